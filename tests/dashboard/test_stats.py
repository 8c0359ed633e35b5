"""The running aggregates agree with the KPI definitions of personify.experiments.kpis and stay
current as events arrive."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from personify.dashboard.i18n import Translator
from personify.dashboard.overview_figures import overview_figures
from personify.dashboard.stats import DashboardStats, TenantStats
from personify.domain.events import Context, Event
from personify.experiments.kpis import kpis_by
from personify.storage.registry import Stores

from .shop import TENANT, make_events

NOW = datetime(2024, 6, 10, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return [e.model_copy(update={"received_at": e.timestamp}) for e in make_events(NOW)]


def test_daily_kpis_match_the_kpi_library(events: list[Event]) -> None:
    stats = TenantStats()
    stats.apply(events)
    expected = kpis_by(events, "day")
    assert len(expected) >= 8
    for day, kpi in expected.items():
        totals = stats.days[datetime.fromisoformat(day).date()]
        assert len(totals.subjects) == kpi.units
        assert len(totals.converted) == kpi.converted_units
        assert len(totals.orders) == kpi.orders
        assert totals.revenue == pytest.approx(kpi.revenue)
        assert len(totals.impressions) == kpi.impressions
    # clicks arrive 30 s after their impression, so the same-day count is the library's
    shown_days = {d for d, k in expected.items() if k.impressions}
    clicked = sum(stats.clicked_impressions(datetime.fromisoformat(d).date()) for d in shown_days)
    assert clicked == sum(k.clicked_impressions for k in expected.values())
    assert clicked > 0


def test_item_totals_count_each_kind_of_event(events: list[Event]) -> None:
    stats = TenantStats()
    stats.apply(events)
    kinds = Counter((e.item_id, e.type) for e in events if e.item_id)
    shown = Counter(i for e in events if e.item_ids for i in e.item_ids)
    for item_id, totals in stats.items.items():
        assert totals.views == kinds[(item_id, "view")]
        assert totals.purchases == kinds[(item_id, "purchase")]
        assert totals.shown == shown[item_id]
        assert totals.recommended_clicks <= totals.clicks
    assert stats.recommended_items() == len(shown)


def test_source_and_channel_ctr(events: list[Event]) -> None:
    stats = TenantStats()
    stats.apply(events)
    impressions = [e for e in events if e.type == "impression"]
    clicks = [e for e in events if e.type == "click"]
    assert sum(c.shown for c in stats.channels.values()) == len(impressions)
    assert sum(c.clicked for c in stats.channels.values()) == len(clicks)
    # every click in the shop is on the first shown item, whose source is "collaborative"
    assert stats.sources["collaborative"].clicked == len(clicks)
    assert stats.sources["popular"].clicked == 0


def test_active_users_count_back_from_the_newest_event(events: list[Event]) -> None:
    stats = TenantStats()
    stats.apply(events)
    newest = max(e.timestamp for e in events)
    day = {e.subject for e in events if e.timestamp > newest - timedelta(days=1)}
    assert stats.active_users(timedelta(days=1)) == len(day)
    assert stats.active_users(timedelta(days=30)) == len({e.subject for e in events})


def test_events_per_minute_by_arrival() -> None:
    stats = TenantStats()
    arrived = NOW - timedelta(minutes=5)
    stats.apply([
        Event(event_id=f"x{i}", type="view", user_id="u", item_id="i",
              timestamp=NOW - timedelta(days=400), received_at=arrived)
        for i in range(3)
    ])
    series = dict(stats.events_per_minute(NOW))
    assert sum(series.values()) == 3
    assert series[arrived.replace(second=0, microsecond=0)] == 3


def test_overview_figures_carry_every_chart(events: list[Event]) -> None:
    stats = TenantStats()
    stats.apply(events)
    figures = overview_figures(stats, Translator("en"), now=NOW)
    ids = [c.chart_id for c in figures.charts]
    assert ids == ["events-per-minute", "impressions-per-day", "ctr-per-day",
                   "conversion-per-day", "aov-per-day", "ctr-by-source"]
    assert figures.impressions == sum(1 for e in events if e.type == "impression")
    ctr = next(c for c in figures.charts if c.chart_id == "ctr-per-day")
    assert any(v for v in ctr.series[0].values if v)


def wait_for(stats: DashboardStats, tenant: str) -> TenantStats:
    deadline = time.monotonic() + 20
    while (found := stats.get(tenant)) is None:
        assert time.monotonic() < deadline, stats.error(tenant)
        time.sleep(0.02)
    return found


def test_built_in_the_background_then_kept_current(shop_stores: Stores) -> None:
    stats = DashboardStats(shop_stores.events)
    assert stats.get(TENANT) is None  # the first call starts the build
    built = wait_for(stats, TENANT)
    assert built.total_events == shop_stores.events.count(TENANT)
    before = built.items.get("i01")
    views = before.views if before else 0
    stats.on_events(TENANT, [Event(event_id="live-1", type="view", user_id="u01",
                                   item_id="i01", timestamp=datetime.now(UTC),
                                   context=Context())])
    assert built.items["i01"].views == views + 1
    assert built.total_events == shop_stores.events.count(TENANT) + 1


def test_a_stale_build_is_replaced_without_double_counting(shop_stores: Stores) -> None:
    clock = [0.0]
    stats = DashboardStats(shop_stores.events, max_age=10, clock=lambda: clock[0])
    first = stats.build_now(TENANT)
    clock[0] = 11.0
    assert stats.get(TENANT) is first  # still served while the rebuild runs
    deadline = time.monotonic() + 20
    while stats.get(TENANT) is first:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert stats.get(TENANT).total_events == first.total_events  # type: ignore[union-attr]
