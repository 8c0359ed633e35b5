"""Segment membership kept current on ingest from live facts (no recomputation of the profile):
the facts after an event equal a full computation's, windows move with the (injected) clock, and
consent / erasure drop the live facts."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from personify.domain.events import Event
from personify.domain.items import Item
from personify.ingestion import EventIngestor
from personify.insights.live import STATIC_FIELDS
from personify.insights.population import PopulationFiles
from personify.insights.segments import SegmentFiles, SegmentIn, SegmentTracker
from personify.insights.service import InsightsService
from personify.jobs.insights import fit_insights
from personify.storage.registry import Stores, open_stores
from personify.testing.clocks import ManualClock

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def stores() -> Iterator[Stores]:
    stores = open_stores("memory://")
    yield stores
    stores.close()


def _event(n: int, type: str, user: str, item: str, days_ago: float, **fields: Any) -> Event:
    return Event(event_id=f"e{n}", type=type, user_id=user, item_id=item,
                 timestamp=NOW - timedelta(days=days_ago), **fields)


def _setup(stores: Stores, tmp_path: Path, clock: ManualClock[datetime],
           allowed: set[str] | None = None) -> tuple[InsightsService, EventIngestor,
                                                      list[tuple[str, str, bool]]]:
    stores.catalog.upsert("t", [Item(item_id="shoe", categories=["shoes"], price=100.0),
                                Item(item_id="hat", categories=["hats"], price=40.0)])
    history = [_event(i, "purchase", f"c{i % 25}", "shoe" if i % 2 else "hat",
                      days_ago=3 + (i * 7) % 300, price=50.0 + i) for i in range(200)]
    history += [_event(1000 + i, "view", f"c{i % 25}", "hat", days_ago=i % 10) for i in range(50)]
    stores.events.append("t", history)
    fit_insights(stores, str(tmp_path), "t", as_of=NOW, clock=lambda: NOW)
    files = SegmentFiles(tmp_path, clock)
    files.put("t", "shoe_lookers", SegmentIn(text='viewed_categories_7d has "shoes"'))
    files.put("t", "buyers_this_week", SegmentIn(text="purchases_7d >= 1"))
    files.put("t", "big", SegmentIn(text="monetary >= 1500 and rfm.r >= 1"))
    files.put("t", "unhappy", SegmentIn(text='sentiment.last = "negative"'))
    tracker = SegmentTracker(files, clock)
    changes: list[tuple[str, str, bool]] = []
    tracker.listeners.append(lambda t, u, s, entered, at: changes.append((u, s, entered)))
    service = InsightsService(
        events=stores.events, users=stores.users, catalog=stores.catalog,
        populations=PopulationFiles(tmp_path),
        may_profile=lambda t, u: allowed is None or u in allowed, tracker=tracker, clock=clock)
    ingestor = EventIngestor(stores.events, listeners=[service.on_events], clock=clock)
    return service, ingestor, changes


def test_live_facts_after_events_equal_a_full_computation(stores: Stores, tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    service, ingestor, changes = _setup(stores, tmp_path, clock)
    for c in range(25):
        service.refresh("t", f"c{c}")
    assert changes == []  # the first evaluation is the baseline
    computed = 0
    real_compute = service._compute

    def counting(*args: Any) -> Any:
        nonlocal computed
        computed += 1
        return real_compute(*args)

    service._compute = counting  # type: ignore[method-assign]
    ingestor.ingest("t", [
        _event(5000, "view", "c3", "shoe", days_ago=0.1),
        _event(5001, "purchase", "c3", "shoe", days_ago=0.05, price=2000.0),
        _event(5002, "review", "c3", "shoe", days_ago=0.01,
               text="Terrible service, the shoes fell apart and nobody answers. Awful."),
    ])
    assert computed == 0  # the membership came from the live facts
    assert {("c3", "shoe_lookers", True), ("c3", "big", True),
            ("c3", "unhappy", True)} <= set(changes)
    live = service._live[("t", "c3")]
    population = service.populations.load("t")
    incremental = live.facts(population, clock())
    full = real_compute("t", "c3", population, clock())[1]
    for key in full:
        if key not in STATIC_FIELDS and key != "keywords":
            same = incremental[key] == full[key] or (
                isinstance(full[key], float) and math.isnan(full[key])
                and math.isnan(incremental[key]))
            assert same, key
    assert incremental["keywords"] == full["keywords"]


def test_windows_follow_the_clock_and_retries_change_nothing(stores: Stores,
                                                             tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    service, ingestor, changes = _setup(stores, tmp_path, clock)
    service.refresh("t", "c4")
    event = _event(6000, "purchase", "c4", "hat", days_ago=0, price=10.0)
    ingestor.ingest("t", [event])
    assert ("c4", "buyers_this_week", True) in changes or "buyers_this_week" in \
        service.refresh("t", "c4")
    before = service._live[("t", "c4")].history.spend
    ingestor.ingest("t", [event])  # a retry is a duplicate: not counted twice
    assert service._live[("t", "c4")].history.spend == before
    clock.now = NOW + timedelta(days=8)
    ingestor.ingest("t", [_event(6001, "view", "c4", "hat", days_ago=-8)])
    assert ("c4", "buyers_this_week", False) in changes


def test_consent_withdrawn_or_erased_drops_live_facts(stores: Stores, tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    allowed = {"c1", "c2"}
    service, ingestor, changes = _setup(stores, tmp_path, clock, allowed=allowed)
    service.refresh("t", "c1")
    service.refresh("t", "c2")
    ingestor.ingest("t", [_event(7000, "view", "c1", "shoe", days_ago=0)])
    assert "shoe_lookers" in {s for u, s, e in changes if u == "c1" and e}
    allowed.discard("c1")
    ingestor.ingest("t", [_event(7001, "view", "c1", "shoe", days_ago=0)])
    assert ("t", "c1") not in service._live
    assert service.tracker is not None
    assert "c1" not in service.tracker.members("t", "shoe_lookers")
    service.forget("t", ["c2"])
    assert ("t", "c2") not in service._live


def _memberships(service: InsightsService, people: list[str]) -> dict[str, set[str] | None]:
    assert service.tracker is not None
    return {u: service.tracker.memberships("t", u) for u in people}


def test_refresh_many_equals_one_by_one_and_reads_events_per_chunk(stores: Stores,
                                                                   tmp_path: Path) -> None:
    from personify.domain.users import User

    clock = ManualClock(NOW)
    allowed = {f"c{c}" for c in range(25)} - {"c7"}
    one, _, _ = _setup(stores, tmp_path / "one", clock, allowed=allowed)
    people = [f"c{c}" for c in range(25)]
    stores.users.upsert("t", [User(user_id=u) for u in people])
    for u in people:
        one.refresh("t", u)
    batch, _, changes = _setup(open_stores("memory://"), tmp_path / "batch", clock,
                               allowed=allowed)
    batch.events, batch.users, batch.catalog = stores.events, stores.users, stores.catalog
    batch.populations = one.populations
    per_person = 0
    real_events = batch.person_events

    def counting(*args: Any) -> Any:
        nonlocal per_person
        per_person += 1
        return real_events(*args)

    batch.person_events = counting  # type: ignore[method-assign]
    users = stores.users.list("t", limit=100)
    assert batch.refresh_many("t", users, chunk=10) == 25
    assert per_person == 0  # read per chunk, not per person
    expected = _memberships(one, people)
    assert _memberships(batch, people) == expected
    assert not expected["c7"] and any(expected[u] for u in people)
    assert ("t", "c7") not in batch._live
    # warm: live facts answer, time-dependent facts move with the clock like a full computation
    clock.now = NOW + timedelta(days=8)
    computed = 0
    real_compute = batch._compute_from

    def counting_compute(*args: Any) -> Any:
        nonlocal computed
        computed += 1
        return real_compute(*args)

    batch._compute_from = counting_compute  # type: ignore[method-assign]
    changes.clear()
    batch.refresh_many("t", users, chunk=10)
    assert computed == 0
    fresh, _, _ = _setup(open_stores("memory://"), tmp_path / "fresh", clock, allowed=allowed)
    fresh.events, fresh.users, fresh.catalog = stores.events, stores.users, stores.catalog
    fresh.populations = one.populations
    fresh.refresh_many("t", users)
    assert _memberships(batch, people) == _memberships(fresh, people)
    assert any(u for u, s, entered in changes if s == "buyers_this_week" and not entered)
