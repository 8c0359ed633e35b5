"""Aggregates behind the Overview and Items pages, kept current without rescanning the log.

A :class:`TenantStats` is built once by scanning the tenant's events (off the request path, in a
background thread) and then updated by the ingestor's listener with every newly stored event.
It is rebuilt from the store every ``max_age`` seconds, which also picks up events that other
worker processes stored. Definitions follow :mod:`personify.experiments.kpis`: a personalized
block is an impression with a ``recommendation_id``; it was clicked when a click quotes that id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from personify.domain.events import Event, EventType
from personify.experiments.kpis import event_revenue
from personify.storage.ports import EventStore

log = logging.getLogger(__name__)

MAX_TRACKED_RECOMMENDATIONS = 200_000
"""Impressions remembered for click attribution (oldest forgotten first)."""
MINUTES_KEPT = 24 * 60


@dataclass
class DayTotals:
    """One calendar day (UTC, by event time) of the KPIs the trend charts show."""

    events: int = 0
    subjects: set[str] = field(default_factory=set)
    converted: set[str] = field(default_factory=set)
    orders: set[str] = field(default_factory=set)
    revenue: float = 0.0
    impressions: set[str] = field(default_factory=set)


@dataclass
class ItemTotals:
    """What happened to one item: interactions, and how it did when recommended."""

    views: int = 0
    clicks: int = 0
    add_to_cart: int = 0
    purchases: int = 0
    shown: int = 0
    """Times the item appeared in a logged recommendation (impression)."""
    recommended_clicks: int = 0
    """Clicks on the item that quote a recommendation showing it."""

    @property
    def ctr(self) -> float | None:
        return self.recommended_clicks / self.shown if self.shown else None


@dataclass
class _Shown:
    day: date
    channel: str
    sources: dict[str, str]
    clicked: set[str] = field(default_factory=set)


@dataclass
class RateCounter:
    """Shown / clicked counts of one group (a channel or a recommendation source)."""

    shown: int = 0
    clicked: int = 0

    @property
    def ctr(self) -> float | None:
        return self.clicked / self.shown if self.shown else None


class TenantStats:
    """Running aggregates of one tenant's events. Not thread-safe: :class:`DashboardStats`
    serializes access."""

    def __init__(self, built_at: float = 0.0) -> None:
        self.built_at = built_at
        self.total_events = 0
        self.newest: datetime | None = None
        self.oldest: datetime | None = None
        self.types: Counter[str] = Counter()
        self.minutes: Counter[int] = Counter()
        self.days: dict[date, DayTotals] = {}
        self.last_seen: dict[str, datetime] = {}
        self.items: dict[str, ItemTotals] = {}
        self.channels: dict[str, RateCounter] = {}
        self.sources: dict[str, RateCounter] = {}
        self._shown: OrderedDict[str, _Shown] = OrderedDict()

    def apply(self, events: Iterable[Event]) -> None:
        """Fold newly stored events in (in any order)."""
        for event in events:
            self._apply_one(event)
        self._prune_minutes()

    def _apply_one(self, e: Event) -> None:
        self.total_events += 1
        self.types[e.type] += 1
        ts = e.timestamp
        if self.newest is None or ts > self.newest:
            self.newest = ts
        if self.oldest is None or ts < self.oldest:
            self.oldest = ts
        if e.received_at is not None:
            self.minutes[int(e.received_at.timestamp()) // 60] += 1
        subject = e.subject
        previous = self.last_seen.get(subject)
        if previous is None or ts > previous:
            self.last_seen[subject] = ts
        day = self.days.setdefault(ts.date(), DayTotals())
        day.events += 1
        day.subjects.add(subject)
        if e.type == EventType.IMPRESSION:
            self._impression(e, day)
        elif e.item_id is not None:
            self._item_event(e, day, subject)

    def _impression(self, e: Event, day: DayTotals) -> None:
        shown_ids = e.item_ids or ([e.item_id] if e.item_id else [])
        for item_id in shown_ids:
            self.items.setdefault(item_id, ItemTotals()).shown += 1
        if not e.recommendation_id or e.recommendation_id in self._shown:
            return
        raw_sources = e.properties.get("sources")
        sources = raw_sources if isinstance(raw_sources, list) else []
        by_item: dict[str, str] = {}
        for i, item in enumerate(shown_ids):  # an item shown twice keeps its first source
            by_item.setdefault(item, str(sources[i]) if i < len(sources) else "unknown")
        channel = e.context.channel or "unknown"
        day.impressions.add(e.recommendation_id)
        self.channels.setdefault(channel, RateCounter()).shown += 1
        for source in by_item.values():
            self.sources.setdefault(source, RateCounter()).shown += 1
        self._shown[e.recommendation_id] = _Shown(e.timestamp.date(), channel, by_item)
        while len(self._shown) > MAX_TRACKED_RECOMMENDATIONS:
            self._shown.popitem(last=False)

    def _item_event(self, e: Event, day: DayTotals, subject: str) -> None:
        assert e.item_id is not None
        totals = self.items.setdefault(e.item_id, ItemTotals())
        if e.type == EventType.VIEW:
            totals.views += 1
        elif e.type == EventType.ADD_TO_CART:
            totals.add_to_cart += 1
        elif e.type == EventType.PURCHASE:
            totals.purchases += 1
            day.converted.add(subject)
            day.orders.add(e.order_id or e.event_id)
            day.revenue += event_revenue(e)
        elif e.type == EventType.CLICK:
            totals.clicks += 1
            shown = self._shown.get(e.recommendation_id) if e.recommendation_id else None
            if shown is not None and e.item_id in shown.sources:
                self._recommended_click(shown, e.item_id, totals)

    def _recommended_click(self, shown: _Shown, item_id: str, totals: ItemTotals) -> None:
        totals.recommended_clicks += 1
        if item_id in shown.clicked:
            return
        if not shown.clicked:
            self.channels.setdefault(shown.channel, RateCounter()).clicked += 1
        shown.clicked.add(item_id)
        self.sources.setdefault(shown.sources[item_id], RateCounter()).clicked += 1

    def _prune_minutes(self) -> None:
        if len(self.minutes) > MINUTES_KEPT:
            for minute in sorted(self.minutes)[: len(self.minutes) - MINUTES_KEPT]:
                del self.minutes[minute]

    def clicked_impressions(self, day: date) -> int:
        totals = self.days.get(day)
        if totals is None:
            return 0
        return sum(
            1
            for rec in totals.impressions
            if (shown := self._shown.get(rec)) is not None and shown.clicked
        )

    def active_users(self, window: timedelta) -> int:
        """Subjects with an event within ``window`` before the newest event."""
        if self.newest is None:
            return 0
        cutoff = self.newest - window
        return sum(1 for ts in self.last_seen.values() if ts > cutoff)

    def events_per_minute(self, now: datetime, minutes: int = 60) -> list[tuple[datetime, int]]:
        """Events stored per minute (by arrival time) over the last ``minutes`` minutes."""
        end = int(now.timestamp()) // 60
        return [
            (datetime.fromtimestamp(m * 60, UTC), self.minutes.get(m, 0))
            for m in range(end - minutes + 1, end + 1)
        ]

    def recommended_items(self) -> int:
        return sum(1 for totals in self.items.values() if totals.shown)

    def interacted_items(self) -> int:
        return sum(
            1
            for t in self.items.values()
            if t.views or t.clicks or t.add_to_cart or t.purchases
        )


@dataclass
class _TenantSlot:
    current: TenantStats | None = None
    building: bool = False
    pending: list[Event] = field(default_factory=list)
    error: str | None = None


class DashboardStats:
    """Per-tenant :class:`TenantStats`, built in the background and kept current by
    :meth:`on_events` (register it with ``ingestor.add_listener``)."""

    def __init__(
        self,
        events: EventStore,
        *,
        max_age: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.events = events
        self.max_age = max_age
        self.clock = clock
        self._slots: dict[str, _TenantSlot] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []

    def close(self, timeout: float = 10.0) -> None:
        """Stop and wait for running builds (call before closing the stores they scan)."""
        self._closing.set()
        for thread in list(self._threads):
            thread.join(timeout)

    def get(self, tenant: str) -> TenantStats | None:
        """The tenant's aggregates, or None while the first build runs (it is started here)."""
        with self._lock:
            slot = self._slots.setdefault(tenant, _TenantSlot())
            stale = slot.current is None or self.clock() - slot.current.built_at > self.max_age
            if stale and not slot.building and not self._closing.is_set():
                slot.building = True
                slot.pending = []
                thread = threading.Thread(
                    target=self._build, args=(tenant,), daemon=True, name="personify-dash-stats"
                )
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
                thread.start()
            return slot.current

    def error(self, tenant: str) -> str | None:
        slot = self._slots.get(tenant)
        return slot.error if slot is not None else None

    def read(self, tenant: str, reader: Callable[[TenantStats], object]) -> object:
        """Run ``reader`` on the current aggregates under the lock (None while building)."""
        stats = self.get(tenant)
        if stats is None:
            return None
        with self._lock:
            return reader(stats)

    def build_now(self, tenant: str) -> TenantStats:
        """Build synchronously (tests, benchmarks) and install the result."""
        with self._lock:
            slot = self._slots.setdefault(tenant, _TenantSlot())
            slot.building = True
            slot.pending = []
        self._build(tenant)
        stats = self._slots[tenant].current
        assert stats is not None
        return stats

    def on_events(self, tenant: str, events: Sequence[Event]) -> None:
        """Ingestor listener: fold newly stored events into the tenant's aggregates."""
        with self._lock:
            slot = self._slots.get(tenant)
            if slot is None:
                return
            if slot.current is not None:
                slot.current.apply(events)
            if slot.building:
                slot.pending.extend(events)

    def _build(self, tenant: str) -> None:
        started = self.clock()
        wall_start = datetime.now(UTC) - timedelta(minutes=1)
        fresh = TenantStats(built_at=started)
        recent_ids: set[str] = set()
        try:
            for event in self.events.scan(tenant):
                if self._closing.is_set():
                    break
                fresh.apply((event,))
                if event.received_at is not None and event.received_at >= wall_start:
                    recent_ids.add(event.event_id)
        except Exception as exc:
            log.exception("dashboard statistics for %s could not be built", tenant)
            with self._lock:
                slot = self._slots[tenant]
                slot.building, slot.pending, slot.error = False, [], str(exc)
            return
        with self._lock:
            slot = self._slots[tenant]
            if self._closing.is_set():
                slot.building, slot.pending = False, []
                return
            fresh.apply(e for e in slot.pending if e.event_id not in recent_ids)
            slot.current, slot.building, slot.pending, slot.error = fresh, False, [], None
        log.info(
            "dashboard statistics for %s: %d events in %.1f s",
            tenant,
            fresh.total_events,
            self.clock() - started,
        )
