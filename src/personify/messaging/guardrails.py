"""Guardrails applied at send time: frequency caps, quiet hours, per-channel rate limits.

Caps count per person, per channel, per calendar day in the person's time zone; quiet hours
defer a message to the end of the quiet period instead of dropping it. Transactional messages
are exempt from both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

from personify.domain.users import User
from personify.messaging.ports import OutboxStore

UTC_ZONE = ZoneInfo("UTC")


def person_zone(user: User, default: str = "UTC") -> ZoneInfo:
    return ZoneInfo(user.profile.time_zone or default)


def local_day_bounds(user: User, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the person's current local calendar day, as aware datetimes."""
    zone = person_zone(user)
    local = now.astimezone(zone)
    start = datetime.combine(local.date(), dtime(0), tzinfo=zone)
    end = datetime.combine(local.date() + timedelta(days=1), dtime(0), tzinfo=zone)
    return start.astimezone(UTC_ZONE), end.astimezone(UTC_ZONE)


@dataclass(frozen=True)
class QuietHours:
    """Local hours ``[start, end)`` (wrapping midnight when start > end) when nothing is sent."""

    start: int = 21
    end: int = 8

    def defer_until(self, user: User, now: datetime) -> datetime | None:
        """When the quiet period ends, or None if ``now`` is not in it."""
        if self.start == self.end:
            return None
        zone = person_zone(user)
        local = now.astimezone(zone)
        hour = local.hour
        quiet = (
            (self.start <= hour < self.end)
            if self.start < self.end
            else (hour >= self.start or hour < self.end)
        )
        if not quiet:
            return None
        day = local.date() if hour < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, dtime(self.end), tzinfo=zone).astimezone(UTC_ZONE)


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``per_day[channel]`` marketing messages per person per local day."""

    per_day: Mapping[str, int] = field(default_factory=lambda: {"email": 2, "push": 3})

    def defer_until(
        self,
        outbox: OutboxStore,
        tenant: str,
        user: User,
        channel: str,
        now: datetime,
        *,
        sent_today: int | None = None,
    ) -> datetime | None:
        """The start of the next local day when today's cap is reached, else None.
        ``sent_today`` is today's count when the caller already knows it (a worker loads them
        per batch); otherwise the outbox is asked."""
        limit = self.per_day.get(channel)
        if limit is None:
            return None
        start, end = local_day_bounds(user, now)
        if sent_today is None:
            sent_today = outbox.count_sent(tenant, user.user_id, channel, start, end)
        if sent_today < limit:
            return None
        return end


class TokenBucket:
    """A rate limit: ``rate`` tokens per second, bursts up to ``capacity``; thread-safe."""

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(rate, 1.0)
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def wait_time(self, now: float | None = None) -> float:
        """Take a token if one is available (returns 0) or say how long to wait for one."""
        with self._lock:
            now = time.monotonic() if now is None else now
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate

    def acquire(self) -> None:
        """Block until a token is taken."""
        while (delay := self.wait_time()) > 0:
            time.sleep(delay)


@dataclass
class Guardrails:
    """Everything checked just before sending a non-transactional message."""

    caps: FrequencyCap = field(default_factory=FrequencyCap)
    quiet_hours: QuietHours | None = field(default_factory=QuietHours)
    rate_limits: dict[str, TokenBucket] = field(default_factory=dict)

    def defer_until(
        self,
        outbox: OutboxStore,
        tenant: str,
        user: User,
        channel: str,
        now: datetime,
        *,
        sent_today: int | None = None,
    ) -> datetime | None:
        """When a message should be retried instead of sent now, or None to send now."""
        if self.quiet_hours is not None:
            until = self.quiet_hours.defer_until(user, now)
            if until is not None:
                return until
        return self.caps.defer_until(outbox, tenant, user, channel, now, sent_today=sent_today)

    def throttle(self, channel: str) -> None:
        bucket = self.rate_limits.get(channel)
        if bucket is not None:
            bucket.acquire()
