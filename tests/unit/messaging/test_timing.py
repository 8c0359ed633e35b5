"""Send-time optimization and the guardrails (quiet hours, caps, token bucket)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from personify.domain.errors import NotFitted
from personify.domain.users import User
from personify.messaging.guardrails import QuietHours, TokenBucket, local_day_bounds
from personify.messaging.timing import SendTimeModel


def _user(uid: str, zone: str = "UTC", country: str | None = None) -> User:
    return User(user_id=uid, profile={"time_zone": zone, "country": country})


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, 15, tzinfo=UTC)


USERS = {
    "tokyo": _user("tokyo", "Asia/Tokyo", "JP"),
    "berlin": _user("berlin", "Europe/Berlin", "DE"),
    "de_peer": _user("de_peer", "Europe/Berlin", "DE"),
    "newbie_de": _user("newbie_de", "Europe/Berlin", "DE"),
    "newbie_xx": _user("newbie_xx", "UTC", "XX"),
}


@pytest.fixture
def model() -> SendTimeModel:
    activity = [("tokyo", _at(d, 11)) for d in range(1, 9)]  # 20:15 Tokyo time
    activity += [("berlin", _at(d, 6)) for d in range(1, 6)]  # 07:15 Berlin (CET)
    activity += [("de_peer", _at(d, 17)) for d in range(1, 20)]  # 18:15 Berlin
    activity += [("de_peer", _at(d, 18)) for d in range(1, 20)]
    return SendTimeModel(prior_strength=2.0, min_group_events=20).fit(activity, USERS)


def test_own_history_in_own_time_zone(model: SendTimeModel) -> None:
    # Tokyo acts at 20:15 local (11:15 UTC); the +-1 h window around 19 also catches the
    # borrowed global mass at 18-19, so 19 or 20 are both right, UTC hours are not.
    assert model.best_hour(USERS["tokyo"]) in (19, 20)
    assert model.best_hour(USERS["berlin"]) == 7


def test_falls_back_to_group_then_global(model: SendTimeModel) -> None:
    assert model.best_hour(USERS["newbie_de"]) in (18, 19)  # the German group's peak
    assert model.best_hour(USERS["newbie_xx"]) == model.global_best_hour()


def test_next_send_time_is_within_the_window() -> None:
    model = SendTimeModel().fit([("tokyo", _at(d, 11)) for d in range(1, 9)], USERS)
    assert model.best_hour(USERS["tokyo"]) == 20
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 21:00 in Tokyo: best hour 20 passed
    at = model.next_send_time(USERS["tokyo"], now)
    assert at == datetime(2026, 3, 11, 11, 0, tzinfo=UTC)
    assert model.next_send_time(USERS["tokyo"], now, within=timedelta(hours=6)) == (
        now + timedelta(hours=6)
    )
    inside = datetime(2026, 3, 10, 11, 30, tzinfo=UTC)
    assert model.next_send_time(USERS["tokyo"], inside) == inside


def test_unfitted_model_raises() -> None:
    with pytest.raises(NotFitted):
        SendTimeModel().best_hour(USERS["tokyo"])


def test_quiet_hours_wrap_midnight_in_local_time() -> None:
    quiet = QuietHours(start=21, end=8)
    tokyo = USERS["tokyo"]
    assert quiet.defer_until(tokyo, datetime(2026, 3, 10, 3, 0, tzinfo=UTC)) is None  # 12:00
    late = datetime(2026, 3, 10, 13, 30, tzinfo=UTC)  # 22:30 Tokyo
    assert quiet.defer_until(tokyo, late) == datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
    early = datetime(2026, 3, 10, 20, 0, tzinfo=UTC)  # 05:00 Tokyo next day
    assert quiet.defer_until(tokyo, early) == datetime(2026, 3, 10, 23, 0, tzinfo=UTC)


def test_local_day_bounds_follow_the_persons_zone() -> None:
    start, end = local_day_bounds(USERS["tokyo"], datetime(2026, 3, 10, 16, 0, tzinfo=UTC))
    assert start == datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    assert end - start == timedelta(days=1)


def test_token_bucket_limits_rate() -> None:
    bucket = TokenBucket(rate=10, capacity=2)
    t0 = bucket._updated
    assert bucket.wait_time(t0) == 0 and bucket.wait_time(t0) == 0
    wait = bucket.wait_time(t0)
    assert wait == pytest.approx(0.1)
    assert bucket.wait_time(t0 + 0.11) == 0
