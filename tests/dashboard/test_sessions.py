"""The session store and login throttle on their own, with a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime

from personify.dashboard.sessions import LoginThrottle, SessionStore
from personify.domain.keys import ApiKey, Scope
from personify.testing.clocks import ManualClock


def key(key_id: str = "k1") -> ApiKey:
    return ApiKey(key_id=key_id, tenant="default", name="ops", scopes=frozenset({Scope.ADMIN}),
                  created_at=datetime.now(UTC))


def test_a_signed_cookie_finds_its_session() -> None:
    store = SessionStore()
    session, cookie = store.open(key())
    assert cookie.startswith(session.session_id + ".")
    assert store.get(cookie) is session
    assert len(session.csrf_token) >= 32


def test_tampered_or_foreign_cookies_are_refused() -> None:
    store, other = SessionStore(), SessionStore()
    session, cookie = store.open(key())
    sid, sig = cookie.split(".")
    # change the signature's first character: it carries six whole bits (the last one may
    # hold only padding bits, and replacing it could leave the decoded signature unchanged)
    forged = ("B" if sig[0] != "B" else "C") + sig[1:]
    for bad in (None, "", sid, f"{sid}.", f"{sid}.{forged}", f"x{sid}.{sig}", f"{cookie}.x",
                "é.é"):
        assert store.get(bad) is None, bad
    assert other.get(cookie) is None  # another process's secret
    assert store.get(other.sign(session.session_id)) is None


def test_sessions_expire_when_idle_and_after_their_lifetime() -> None:
    clock = ManualClock(1000.0)
    store = SessionStore(idle_seconds=60, lifetime_seconds=300, clock=clock)
    _, cookie = store.open(key())
    for _ in range(4):
        clock.now += 50  # active: each request restarts the idle clock
        assert store.get(cookie) is not None
    clock.now += 101  # 301 s after opening
    assert store.get(cookie) is None
    _, idle_cookie = store.open(key())
    clock.now += 61
    assert store.get(idle_cookie) is None


def test_closing_and_revoking_a_key_end_sessions() -> None:
    store = SessionStore()
    first, c1 = store.open(key("k1"))
    _, c2 = store.open(key("k1"))
    _, c3 = store.open(key("k2"))
    store.close(first.session_id)
    assert store.get(c1) is None and store.get(c2) is not None
    assert store.close_for_key("k1") == 1
    assert store.get(c2) is None and store.get(c3) is not None


def test_throttle_blocks_after_the_limit_and_forgets_after_the_window() -> None:
    clock = ManualClock(1000.0)
    throttle = LoginThrottle(limit=3, window=60, clock=clock)
    for _ in range(3):
        assert not throttle.blocked("1.2.3.4")
        throttle.failed("1.2.3.4")
    assert throttle.blocked("1.2.3.4")
    assert not throttle.blocked("5.6.7.8")
    clock.now += 61
    assert not throttle.blocked("1.2.3.4")
