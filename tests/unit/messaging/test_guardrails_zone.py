"""The helpers that let tests with child processes pass at any hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from personify.domain.users import User
from personify.messaging.guardrails import QuietHours
from personify.testing.clocks import daytime_zone, real_now


def test_a_daytime_zone_is_outside_quiet_hours_at_every_hour() -> None:
    start = datetime(2026, 12, 7, 0, 30, tzinfo=UTC)
    for hour in range(24):
        now = start + timedelta(hours=hour)
        person = User(user_id="p", profile={"time_zone": daytime_zone(now)})
        assert QuietHours().defer_until(person, now) is None, (hour, daytime_zone(now))
    # the same person in UTC is inside quiet hours at night: the check can fail
    assert QuietHours().defer_until(User(user_id="p"), start) is not None


def test_real_now_is_the_real_clock_while_the_suite_clock_is_moved() -> None:
    import time

    import time_machine

    with time_machine.travel(datetime(2001, 1, 1, 3, 0, tzinfo=UTC), tick=False):
        assert datetime.now(UTC).year == 2001
        assert abs(real_now().timestamp() - time_machine.escape_hatch.time.time()) < 5
        assert real_now().year > 2001
    # outside that travel: the real clock again (the suite's own clock may still be moved by
    # PERSONIFY_TEST_WALL_CLOCK, so compare with time-machine's escape hatch, not time.time())
    real = time_machine.escape_hatch.time.time() if time_machine.escape_hatch.is_travelling() \
        else time.time()
    assert abs(real_now().timestamp() - real) < 5
