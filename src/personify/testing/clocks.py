"""Clocks for tests that must pass at any hour of the day.

Anything that depends on the time of day (quiet hours, local calendar days, send-time windows)
takes an injected clock; tests give it one of these instead of the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Generic, TypeVar

Clock = Callable[[], datetime]
T = TypeVar("T")


class ManualClock(Generic[T]):
    """A clock that reads ``now`` (a datetime, or epoch seconds) until the test sets it."""

    def __init__(self, now: T) -> None:
        self.now = now

    def __call__(self) -> T:
        return self.now


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


def real_now() -> datetime:
    """The real time, even while the suite's clock is moved (``PERSONIFY_TEST_WALL_CLOCK`` moves
    the test process only, through time-machine): what a child process — a server or a worker
    started by the test — reads."""
    try:
        import time_machine
    except ImportError:  # pragma: no cover - time-machine is a dev dependency
        return datetime.now(UTC)
    if time_machine.escape_hatch.is_travelling():
        return datetime.fromtimestamp(time_machine.escape_hatch.time.time(), UTC)
    return datetime.now(UTC)


def daytime_zone(now: datetime | None = None) -> str:
    """An IANA zone where it is 12:xx local at ``now`` (the real time by default): people living
    there are outside the default quiet hours (21:00-08:00 local) whenever a test runs, also in
    child processes that read the real clock."""
    hour = (now or real_now()).astimezone(UTC).hour
    offset = 12 - hour  # -11 .. +12 hours from UTC
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT-5 is UTC+5
