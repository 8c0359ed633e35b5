"""Business KPIs computed from events: pure functions over an iterable of ``Event``.

Conventions: a *personalized block* is an impression carrying a ``recommendation_id``; a click
counts for it when a click has the same ``recommendation_id``. Revenue of a purchase is ``value``
when set, else ``price * quantity`` (quantity 1 when missing). A session ends after 30 minutes
without events. Units are ``Event.subject`` (user id, else ``anon:<anonymous id>``). The
recommendation update latency is read from impressions the engine stamped with
``properties["update_latency_ms"]`` (see :mod:`personify.experiments.update_latency`).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from personify.domain.errors import InvalidInput
from personify.domain.events import Event, EventType
from personify.experiments.ports import ExposureRecord
from personify.experiments.update_latency import LATENCY_PROPERTY

SESSION_GAP = timedelta(minutes=30)
RETENTION_WINDOW = timedelta(days=90)
SENT_TYPES = frozenset({"email_sent", "message_sent", "send"})
"""Event types that record a sent e-mail (with channel ``email``): the outbox records
``message_sent``. They are not the person's activity: units, sessions and retention skip them."""


def event_revenue(event: Event) -> float:
    """Revenue of a purchase event (0 for other types)."""
    if event.type != EventType.PURCHASE:
        return 0.0
    if event.value is not None:
        return float(event.value)
    if event.price is not None:
        return float(event.price) * float(event.quantity if event.quantity is not None else 1)
    return 0.0


def sessions(events: Iterable[Event], gap: timedelta = SESSION_GAP) -> dict[str, list[list[Event]]]:
    """Events split into sessions per subject, each session in time order."""
    by_subject: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e.type not in SENT_TYPES:  # a message sent to the person is not their visit
            by_subject[e.subject].append(e)
    out: dict[str, list[list[Event]]] = {}
    for subject, evs in by_subject.items():
        evs.sort(key=lambda e: e.timestamp)
        current: list[Event] = [evs[0]]
        groups = [current]
        for prev, e in itertools.pairwise(evs):
            if e.timestamp - prev.timestamp > gap:
                current = []
                groups.append(current)
            current.append(e)
        out[subject] = groups
    return out


@dataclass
class KpiSummary:
    """The KPIs of one group of events (a day, a variant, a channel, a source, or everything)."""

    units: int = 0
    impressions: int = 0
    clicked_impressions: int = 0
    ctr: float = 0.0
    converted_units: int = 0
    conversion_rate: float = 0.0
    orders: int = 0
    revenue: float = 0.0
    average_order_value: float = 0.0
    revenue_per_user: float = 0.0
    sessions: int = 0
    personalized_clicks_per_session: float = 0.0
    time_on_site_seconds: float = 0.0
    repeat_visit_share: float = 0.0
    emails_sent: int = 0
    personalized_email_share: float = 0.0
    update_latency_samples: int = 0
    """Impressions that were a visitor's first personalized recommendation after an event."""
    update_latency_p50_ms: float | None = None
    update_latency_p95_ms: float | None = None
    update_latency_p99_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def update_latencies(events: Iterable[Event]) -> list[float]:
    """The update-latency samples (milliseconds) stamped on impressions."""
    out = []
    for e in events:
        if e.type != EventType.IMPRESSION:
            continue
        value = e.properties.get(LATENCY_PROPERTY)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out.append(float(value))
    return out


def latency_percentiles(samples: list[float]) -> tuple[float | None, float | None, float | None]:
    """p50, p95 and p99 (linear interpolation between order statistics); None without samples."""
    if not samples:
        return None, None, None
    p50, p95, p99 = np.percentile(np.asarray(samples, dtype=float), [50, 95, 99])
    return round(float(p50), 3), round(float(p95), 3), round(float(p99), 3)


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def summarize(events: Iterable[Event]) -> KpiSummary:
    """Every KPI of one group of events at once."""
    everything = list(events)
    s = KpiSummary()
    sent = [e for e in everything if e.type in SENT_TYPES and e.context.channel == "email"]
    s.emails_sent = len(sent)
    s.personalized_email_share = _ratio(sum(1 for e in sent if e.recommendation_id), len(sent))
    evs = [e for e in everything if e.type not in SENT_TYPES]
    if not evs:
        return s
    shown = {
        e.recommendation_id for e in evs if e.type == EventType.IMPRESSION and e.recommendation_id
    }
    clicked = {
        e.recommendation_id
        for e in evs
        if e.type == EventType.CLICK and e.recommendation_id in shown
    }
    s.units = len({e.subject for e in evs})
    s.impressions, s.clicked_impressions = len(shown), len(clicked)
    s.ctr = _ratio(len(clicked), len(shown))
    purchases = [e for e in evs if e.type == EventType.PURCHASE]
    s.converted_units = len({e.subject for e in purchases})
    s.conversion_rate = _ratio(s.converted_units, s.units)
    s.orders = len({e.order_id or e.event_id for e in purchases})
    s.revenue = sum(event_revenue(e) for e in purchases)
    s.average_order_value = _ratio(s.revenue, s.orders)
    s.revenue_per_user = _ratio(s.revenue, s.units)
    per_subject = sessions(evs)
    all_sessions = [g for groups in per_subject.values() for g in groups]
    s.sessions = len(all_sessions)
    personalized_clicks = sum(
        1 for e in evs if e.type == EventType.CLICK and e.recommendation_id in shown
    )
    s.personalized_clicks_per_session = _ratio(personalized_clicks, s.sessions)
    durations = [(g[-1].timestamp - g[0].timestamp).total_seconds() for g in all_sessions]
    s.time_on_site_seconds = _ratio(sum(durations), len(durations))
    s.repeat_visit_share = _ratio(
        sum(1 for g in per_subject.values() if len(g) > 1), len(per_subject)
    )
    latencies = update_latencies(evs)
    s.update_latency_samples = len(latencies)
    s.update_latency_p50_ms, s.update_latency_p95_ms, s.update_latency_p99_ms = (
        latency_percentiles(latencies)
    )
    return s


def retention(
    events: Iterable[Event], *, window: timedelta = RETENTION_WINDOW, as_of: datetime | None = None
) -> float:
    """Share of units, first seen at least ``window`` before ``as_of`` (default: the last event),
    who came back in a later session within ``window`` of their first event."""
    per_subject = sessions(events)
    if not per_subject:
        return 0.0
    end = as_of or max(g[-1].timestamp for groups in per_subject.values() for g in groups)
    eligible = returned = 0
    for groups in per_subject.values():
        first = groups[0][0].timestamp
        if first > end - window:
            continue
        eligible += 1
        if any(first < g[0].timestamp <= first + window for g in groups[1:]):
            returned += 1
    return _ratio(returned, eligible)


def group_key(
    by: str,
    *,
    assignment: Mapping[str, str] | None = None,
    sources: Mapping[str, str] | None = None,
) -> Callable[[Event], str | None]:
    """Key function for ``by`` in day, variant, channel, source (None drops the event)."""
    if by == "day":
        return lambda e: e.timestamp.date().isoformat()
    if by == "channel":
        return lambda e: e.context.channel or "unknown"
    if by == "variant":
        amap = assignment or {}
        return lambda e: amap.get(e.subject)
    if by == "source":
        smap = sources or {}

        def source(e: Event) -> str | None:
            value = e.properties.get("source")
            if isinstance(value, str):
                return value
            return smap.get(e.recommendation_id) if e.recommendation_id else None

        return source
    raise InvalidInput(
        f"unknown grouping {by!r}", field="by", accepted="day, variant, channel, source"
    )


def kpis_by(
    events: Iterable[Event],
    by: str,
    *,
    assignment: Mapping[str, str] | None = None,
    sources: Mapping[str, str] | None = None,
) -> dict[str, KpiSummary]:
    """KPIs per day / variant (``assignment``: subject -> variant) / channel / recommendation
    source (``properties["source"]`` or ``sources``: recommendation id -> source)."""
    key = group_key(by, assignment=assignment, sources=sources)
    groups: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        k = key(e)
        if k is not None:
            groups[k].append(e)
    return {k: summarize(v) for k, v in sorted(groups.items())}


@dataclass(frozen=True)
class RevenueLift:
    variant: str
    units: int
    revenue_per_user: float
    lift: float
    incremental_revenue: float
    roi: float | None


def revenue_lift(
    events: Iterable[Event],
    assignment: Mapping[str, str],
    control: str,
    *,
    costs: Mapping[str, float] | None = None,
) -> list[RevenueLift]:
    """Revenue per assigned unit per variant, relative lift vs ``control``, incremental revenue
    ((rpu - rpu_control) * units) and ROI (incremental / cost) when the variant's cost is given."""
    revenue: dict[str, float] = defaultdict(float)
    for e in events:
        v = assignment.get(e.subject)
        if v is not None:
            revenue[v] += event_revenue(e)
    units: dict[str, int] = defaultdict(int)
    for v in assignment.values():
        units[v] += 1
    rpu_c = _ratio(revenue[control], units[control])
    out = []
    for v in sorted(units):
        rpu = _ratio(revenue[v], units[v])
        inc = (rpu - rpu_c) * units[v]
        cost = (costs or {}).get(v)
        out.append(
            RevenueLift(
                v,
                units[v],
                rpu,
                _ratio(rpu, rpu_c) - 1 if rpu_c else 0.0,
                inc,
                inc / cost if cost else None,
            )
        )
    return out


GROUPINGS = ("none", "day", "variant", "channel", "source")
DEFAULT_DAYS = 30
MAX_DAYS = 400


def kpi_window(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The window a KPI report reads (default: the last 30 days); UTC when naive; at most
    ``MAX_DAYS`` long."""
    until = until or now
    since = since or until - timedelta(days=DEFAULT_DAYS)
    if until.tzinfo is None:
        until = until.replace(tzinfo=now.tzinfo)
    if since.tzinfo is None:
        since = since.replace(tzinfo=now.tzinfo)
    if since >= until:
        raise InvalidInput("since must be before until", field="since", accepted="since < until")
    if until - since > timedelta(days=MAX_DAYS):
        raise InvalidInput(
            f"the window is longer than {MAX_DAYS} days",
            field="since",
            accepted=f"at most {MAX_DAYS} days",
        )
    return since, until


def variant_maps(
    exposures: Iterable[ExposureRecord], aliases: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Event subject (user id, or ``anon:<id>``) -> variant, from an experiment's exposures:
    every subject of a unit (to group events), and one subject per unit (to count units).
    ``aliases`` is the sticky-assignment map user id -> unit key."""
    units = {x.unit: x.variant for x in exposures}
    subjects = {(u[5:] if u.startswith("user:") else u): v for u, v in units.items()}
    one_per_unit = dict(subjects)
    for user_id, unit in aliases.items():
        if unit in units:
            subjects[user_id] = units[unit]
            one_per_unit.pop(unit, None)  # a logged-in unit's events carry the user id
            one_per_unit[user_id] = units[unit]
    return subjects, one_per_unit


@dataclass
class KpiReport:
    """What ``/v1/kpis`` and ``personify kpis`` show for one window."""

    group_by: str
    since: datetime
    until: datetime
    events: int
    truncated: bool
    total: dict[str, Any]
    retention_90d: float | None
    groups: dict[str, dict[str, Any]]
    revenue_lift: list[RevenueLift] | None = None


def kpi_report(
    events: Iterable[Event],
    *,
    group_by: str,
    since: datetime,
    until: datetime,
    max_events: int,
    assignment: Mapping[str, str] | None = None,
    per_unit: Mapping[str, str] | None = None,
    control: str | None = None,
) -> KpiReport:
    """Every KPI of the window in total and per group (``assignment``, ``per_unit`` and
    ``control`` from :func:`variant_maps` for ``group_by="variant"``); reads at most
    ``max_events`` events (``truncated`` says when there were more)."""
    if group_by not in GROUPINGS:
        raise InvalidInput(
            f"unknown grouping {group_by!r}", field="group_by", accepted=", ".join(GROUPINGS)
        )
    read: list[Event] = []
    truncated = False
    for event in events:
        if len(read) >= max_events:
            truncated = True
            break
        read.append(event)
    groups = (
        {}
        if group_by == "none"
        else {k: v.to_dict() for k, v in kpis_by(read, group_by, assignment=assignment).items()}
    )
    lift = None
    if assignment is not None and control is not None:
        lift = revenue_lift(read, per_unit if per_unit is not None else assignment, control)
    long_enough = until - since >= 2 * RETENTION_WINDOW
    return KpiReport(
        group_by=group_by,
        since=since,
        until=until,
        events=len(read),
        truncated=truncated,
        total=summarize(read).to_dict(),
        retention_90d=retention(read, as_of=until) if long_enough else None,
        groups=groups,
        revenue_lift=lift,
    )
