"""The update-latency tracker on an injected clock, and its percentiles in the KPI summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from personify.domain.events import Context, Event
from personify.experiments.kpis import kpis_by, summarize
from personify.experiments.update_latency import UpdateLatencyTracker

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def _view(user: str, n: int, item: str | None = "i1", type_: str = "view") -> Event:
    return Event(event_id=f"{user}-{n}", type=type_, user_id=user, item_id=item, timestamp=T0)


def _impression(user: str, n: int, *, personalized: bool = True, channel: str = "web") -> Event:
    return Event(
        event_id=f"imp-{user}-{n}",
        type="impression",
        user_id=user,
        item_ids=["i2"],
        recommendation_id=f"r-{user}-{n}",
        timestamp=T0,
        context=Context(channel=channel),
        properties={"personalized": personalized},
    )


def test_the_first_personalized_impression_after_the_latest_event_is_stamped() -> None:
    clock = Clock()
    tracker = UpdateLatencyTracker(clock=clock)
    logged: list[Event] = []
    log = tracker.wrap(lambda tenant, event: logged.append(event))
    tracker.acknowledged("t", [_view("u", 1)])
    clock.advance(milliseconds=120)
    tracker.acknowledged("t", [_view("u", 2)])  # the latest acknowledged event counts
    clock.advance(milliseconds=250)
    log("t", _impression("u", 1, personalized=False))  # not personalized: not reflected
    clock.advance(milliseconds=30)
    log("t", _impression("u", 2))
    log("t", _impression("u", 3))  # already counted
    assert "update_latency_ms" not in logged[0].properties
    assert logged[1].properties["update_latency_ms"] == pytest.approx(280.0)
    assert logged[1].properties["update_event_id"] == "u-2"
    assert "update_latency_ms" not in logged[2].properties
    assert tracker.samples == 1 and tracker.pending() == 0


def test_what_never_counts_as_an_update() -> None:
    clock = Clock()
    tracker = UpdateLatencyTracker(clock=clock, max_age=timedelta(minutes=30), max_pending=2)
    tracker.acknowledged("t", [_view("a", 1, item=None, type_="search"),
                               _view("a", 2, type_="impression")])
    assert tracker.pending() == 0  # item-less events and impressions change nothing served
    tracker.acknowledged("t", [_view("a", 3)])
    tracker.acknowledged("other", [_view("a", 4)])
    assert tracker.on_impression("t", _impression("b", 1)).properties.get(
        "update_latency_ms") is None  # another subject
    clock.advance(minutes=31)
    stale = tracker.on_impression("t", _impression("a", 1))
    assert "update_latency_ms" not in stale.properties and tracker.expired == 1
    tracker.acknowledged("t", [_view("x", 1), _view("y", 1), _view("z", 1)])
    assert tracker.pending() == 2 and tracker.expired == 3  # bounded: oldest dropped
    assert tracker.forget("t", ["z"]) == 1


def test_percentiles_per_group_come_from_the_stamped_samples() -> None:
    samples = {"web": [10.0, 20.0, 30.0, 40.0, 1000.0], "app": [5.0]}
    events = []
    for channel, values in samples.items():
        for n, value in enumerate(values):
            e = _impression(f"{channel}{n}", n, channel=channel)
            events.append(
                e.model_copy(update={"properties": {**e.properties, "update_latency_ms": value}})
            )
    events.append(_impression("plain", 0))  # an impression without a sample
    total = summarize(events)
    everything = samples["web"] + samples["app"]
    assert total.update_latency_samples == 6
    got = (total.update_latency_p50_ms, total.update_latency_p95_ms, total.update_latency_p99_ms)
    assert got == pytest.approx(tuple(np.percentile(everything, [50, 95, 99])))
    by_channel = kpis_by(events, "channel")
    assert by_channel["web"].update_latency_p50_ms == 30.0
    assert by_channel["app"].update_latency_samples == 1
    assert summarize([_impression("plain", 0)]).update_latency_p50_ms is None
