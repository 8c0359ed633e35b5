"""Retention per event type: how long each kind of event is kept, and the purge that enforces it.

``{"view": 90, "impression": 30, "*": 730}`` keeps views 90 days, impressions 30, anything else
two years; types not listed and no ``*`` are kept. The purge job deletes expired events from the
event store; training applies :meth:`RetentionPolicy.admits` so models stop using them even
before the next purge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from personify.domain.errors import ConfigurationError
from personify.domain.events import BUILTIN_EVENT_TYPES, Event
from personify.storage.ports import EventStore

EVERY_TYPE = "*"


@dataclass(frozen=True)
class RetentionPolicy:
    """Days to keep per event type (``*`` for every type not named)."""

    days: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in self.days.items():
            if not value > 0:
                raise ConfigurationError(
                    f"retention of {name!r} must be a positive number of days, got {value!r}",
                    field=f"retention_days.{name}",
                    accepted="a number of days > 0 (leave the type out to keep it forever)",
                )

    def period(self, event_type: str) -> timedelta | None:
        value = self.days.get(event_type, self.days.get(EVERY_TYPE))
        return None if value is None else timedelta(days=value)

    def cutoff(self, event_type: str, now: datetime) -> datetime | None:
        period = self.period(event_type)
        return None if period is None else now - period

    def admits(self, event: Event, now: datetime) -> bool:
        """False for an event older than its type's retention at ``now``."""
        cutoff = self.cutoff(event.type, now)
        return cutoff is None or event.timestamp >= cutoff

    def event_filter(self, now: datetime | None = None) -> Callable[[Event], bool]:
        moment = now or datetime.now(UTC)
        return lambda event: self.admits(event, moment)

    def purge(
        self,
        events: EventStore,
        tenant: str,
        *,
        now: datetime | None = None,
        known_types: Iterable[str] = BUILTIN_EVENT_TYPES,
    ) -> dict[str, int]:
        """Delete every expired event of ``tenant``; returns how many per type (non-zero only).

        ``*`` applies to ``known_types`` (the built-in plus the installation's custom types).
        """
        moment = now or datetime.now(UTC)
        types = {t for t in self.days if t != EVERY_TYPE}
        if EVERY_TYPE in self.days:
            types |= set(known_types)
        out: dict[str, int] = {}
        for event_type in sorted(types):
            cutoff = self.cutoff(event_type, moment)
            if cutoff is None:
                continue
            deleted = events.delete_older_than(tenant, event_type, cutoff)
            if deleted:
                out[event_type] = deleted
        return out
