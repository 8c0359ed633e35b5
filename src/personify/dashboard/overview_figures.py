"""The Overview page's numbers and charts, computed from :class:`TenantStats`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from personify.dashboard.charts import Chart, Series
from personify.dashboard.i18n import Translator
from personify.dashboard.stats import RateCounter, TenantStats

TREND_DAYS = 60
"""Days with data shown in the trend charts (the newest ones)."""


@dataclass
class Rate:
    name: str
    shown: int
    clicked: int
    ctr: float | None


@dataclass
class OverviewFigures:
    total_events: int
    newest: datetime | None
    oldest: datetime | None
    active_day: int
    active_week: int
    active_month: int
    impressions: int
    events_last_hour: int
    recommended_items: int
    interacted_items: int
    charts: list[Chart] = field(default_factory=list)
    channels: list[Rate] = field(default_factory=list)
    sources: list[Rate] = field(default_factory=list)


def _rates(groups: dict[str, RateCounter]) -> list[Rate]:
    return [
        Rate(name, c.shown, c.clicked, c.ctr)
        for name, c in sorted(groups.items(), key=lambda kv: -kv[1].shown)
    ]


def overview_figures(
    stats: TenantStats, t: Translator, now: datetime | None = None
) -> OverviewFigures:
    """Every number and chart of the Overview panel."""
    now = now or datetime.now(UTC)
    per_minute = stats.events_per_minute(now)
    days = sorted(stats.days)[-TREND_DAYS:]
    labels = [d.isoformat() for d in days]
    ctr: list[float | None] = []
    conversion: list[float | None] = []
    aov: list[float | None] = []
    impressions: list[float | None] = []
    for d in days:
        totals = stats.days[d]
        shown = len(totals.impressions)
        impressions.append(float(shown))
        ctr.append(stats.clicked_impressions(d) / shown if shown else None)
        conversion.append(len(totals.converted) / len(totals.subjects) if totals.subjects else None)
        aov.append(totals.revenue / len(totals.orders) if totals.orders else None)
    charts = [
        Chart(
            "events-per-minute",
            t("chart_events_per_minute"),
            [ts.strftime("%H:%M") for ts, _ in per_minute],
            [Series(t("events"), [float(n) for _, n in per_minute])],
            kind="bars",
            x=[ts.timestamp() for ts, _ in per_minute],
            time_axis=True,
        ),
        Chart("impressions-per-day", t("chart_impressions_per_day"), labels,
              [Series(t("recommendation_requests"), impressions)], kind="bars"),
        Chart("ctr-per-day", t("chart_ctr_per_day"), labels,
              [Series(t("ctr"), ctr, percent=True)]),
        Chart("conversion-per-day", t("chart_conversion_per_day"), labels,
              [Series(t("conversion_rate"), conversion, percent=True)]),
        Chart("aov-per-day", t("chart_aov_per_day"), labels,
              [Series(t("average_order_value"), aov)]),
    ]
    channels, sources = _rates(stats.channels), _rates(stats.sources)
    if sources:
        charts.append(
            Chart("ctr-by-source", t("chart_ctr_by_source"), [r.name for r in sources],
                  [Series(t("ctr"), [r.ctr for r in sources], percent=True)], kind="bars")
        )
    return OverviewFigures(
        total_events=stats.total_events,
        newest=stats.newest,
        oldest=stats.oldest,
        active_day=stats.active_users(timedelta(days=1)),
        active_week=stats.active_users(timedelta(days=7)),
        active_month=stats.active_users(timedelta(days=30)),
        impressions=stats.types.get("impression", 0),
        events_last_hour=sum(n for _, n in per_minute),
        recommended_items=stats.recommended_items(),
        interacted_items=stats.interacted_items(),
        charts=charts,
        channels=channels,
        sources=sources,
    )
