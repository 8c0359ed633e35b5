"""Clocks for tests that must pass at any hour of the day.

Anything that depends on the time of day (quiet hours, local calendar days, send-time windows)
takes an injected clock; tests give it one of these instead of the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

Clock = Callable[[], datetime]


def shifted_clock(target: time, *, now: Clock | None = None) -> Clock:
    """A running clock (it advances with the wall clock) that reads ``target`` UTC at the moment
    it is made, on the next day at or after the real time (so it is never behind the wall clock:
    something scheduled "now" by real time is already due by this clock)."""
    real = now or (lambda: datetime.now(UTC))
    start = real()
    at = datetime.combine(start.date(), target, tzinfo=UTC)
    if at < start:
        at += timedelta(days=1)
    offset = at - start
    return lambda: real() + offset


def daytime_clock() -> Clock:
    """A running clock at 12:00 UTC: outside the default quiet hours (21:00-08:00 local) of a
    person in any time zone from UTC-8 to UTC+8."""
    return shifted_clock(time(12, 0))
