from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from personify.domain.events import Context, Event
from personify.experiments.kpis import kpis_by, retention, revenue_lift, sessions, summarize

T0 = datetime(2024, 1, 1, 10, tzinfo=UTC)
_n = 0


def ev(type_: str, user: str, minutes: float, **kw: object) -> Event:
    global _n
    _n += 1
    return Event.model_validate(
        {
            "event_id": f"e{_n}",
            "type": type_,
            "user_id": user,
            "timestamp": T0 + timedelta(minutes=minutes),
            **kw,
        }
    )


def log() -> list[Event]:
    return [
        ev(
            "impression",
            "a",
            0,
            item_ids=["x", "y"],
            recommendation_id="r1",
            properties={"source": "ease"},
        ),
        ev("click", "a", 1, item_id="x", recommendation_id="r1", properties={"source": "ease"}),
        ev("purchase", "a", 2, item_id="x", price=10.0, quantity=2, order_id="o1"),
        ev(
            "impression",
            "a",
            120,
            item_ids=["z"],
            recommendation_id="r2",
            properties={"source": "popular"},
        ),
        ev(
            "impression",
            "b",
            0,
            item_ids=["x"],
            recommendation_id="r3",
            properties={"source": "popular"},
        ),
        ev("view", "b", 10, item_id="x"),
        ev("email_sent", "b", 20, context=Context(channel="email"), recommendation_id="m1"),
        ev("email_sent", "c", 20, context=Context(channel="email")),
    ]


def test_summary_kpis() -> None:
    s = summarize(log())
    assert s.units == 2  # a message sent to c (or b) is not their visit
    assert (s.impressions, s.clicked_impressions) == (3, 1)
    assert s.ctr == pytest.approx(1 / 3)
    assert s.conversion_rate == pytest.approx(1 / 2)
    assert s.revenue == 20.0 and s.average_order_value == 20.0
    assert s.revenue_per_user == pytest.approx(20 / 2)
    assert s.sessions == 3  # a: two sessions (120 min gap), b: one
    assert s.personalized_clicks_per_session == pytest.approx(1 / 3)
    assert s.time_on_site_seconds == pytest.approx((120 + 0 + 600) / 3)
    assert s.repeat_visit_share == pytest.approx(1 / 2)
    assert (s.emails_sent, s.personalized_email_share) == (2, 0.5)


def test_grouping_by_source_variant_day() -> None:
    by_source = kpis_by(log(), "source")
    assert set(by_source) == {"ease", "popular"}
    assert by_source["ease"].ctr == 1.0 and by_source["popular"].ctr == 0.0
    by_variant = kpis_by(log(), "variant", assignment={"a": "B", "b": "A"})
    assert by_variant["B"].revenue == 20.0 and "c" not in by_variant
    assert list(kpis_by(log(), "day")) == ["2024-01-01"]


def test_sessions_split_on_30_minutes() -> None:
    groups = sessions(
        [
            ev("view", "u", 0, item_id="x"),
            ev("view", "u", 29, item_id="x"),
            ev("view", "u", 60, item_id="x"),
        ]
    )
    assert [len(g) for g in groups["u"]] == [2, 1]


def test_retention_90_days() -> None:
    events = [
        ev("page", "a", 0),
        ev("page", "a", 60 * 24 * 30),  # back after 30 days
        ev("page", "b", 0),
        ev("page", "b", 60 * 24 * 120),  # back after 120 days: too late
        ev("page", "c", 60 * 24 * 100),
    ]  # first seen too recently: not eligible
    assert retention(events) == pytest.approx(0.5)


def test_revenue_lift_and_roi() -> None:
    events = [
        ev("purchase", "a", 0, item_id="x", value=30.0),
        ev("purchase", "b", 0, item_id="x", value=10.0),
    ]
    rows = {
        r.variant: r
        for r in revenue_lift(events, {"a": "B", "b": "A", "c": "A"}, "A", costs={"B": 5.0})
    }
    assert rows["A"].revenue_per_user == 5.0 and rows["B"].revenue_per_user == 30.0
    assert rows["B"].lift == pytest.approx(5.0)
    assert rows["B"].incremental_revenue == 25.0 and rows["B"].roi == 5.0
