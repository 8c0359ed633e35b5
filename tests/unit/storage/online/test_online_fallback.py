"""FallbackOnlineState: degrade to in-process state with one warning, retry after a back-off."""

from __future__ import annotations

import logging
import socket

import pytest

from personify.domain.errors import Unavailable
from personify.storage.online.fallback import FallbackOnlineState
from personify.storage.online.memory import MemoryOnlineState
from personify.storage.online.redis import RedisOnlineState
from personify.testing.clocks import ManualClock
from personify.testing.online_state_contracts import TENANT, event, minutes


class Switchable(MemoryOnlineState):
    """An in-process state that can be switched off to play a recovering primary."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    def user_state(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.down:
            raise Unavailable("switched off")
        return super().user_state(*args, **kwargs)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_closed_redis_port_degrades_to_the_fallback_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    primary = RedisOnlineState.from_url(url, "ptest", check=False)
    state = FallbackOnlineState(primary, MemoryOnlineState())
    with caplog.at_level(logging.WARNING, logger="personify.storage.online.fallback"):
        state.apply(TENANT, [event("u1", "a", minutes(0)), event("u1", "b", minutes(1))],
                    now=minutes(1))
        user = state.user_state(TENANT, "u1", now=minutes(2))
        hot = state.trending(TENANT, 5, now=minutes(2))
    assert [r.item_id for r in user.recent] == ["b", "a"]
    assert [i for i, _ in hot] == ["b", "a"]
    assert state.degraded
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "fallback" in warnings[0].getMessage()
    state.close()


def test_the_primary_is_retried_only_after_the_back_off(caplog: pytest.LogCaptureFixture) -> None:
    primary, clock = Switchable(), ManualClock(1000.0)
    state = FallbackOnlineState(primary, MemoryOnlineState(), clock=clock)
    primary.down = True
    with caplog.at_level(logging.WARNING, logger="personify.storage.online.fallback"):
        state.user_state(TENANT, "u1")
        state.user_state(TENANT, "u1")
        assert primary.calls == 1 and state.degraded
        clock.now += 31
        state.user_state(TENANT, "u1")  # retried, still down: no second warning
        assert primary.calls == 2 and state.degraded
        primary.down = False
        clock.now += 31
        state.user_state(TENANT, "u1")
    assert primary.calls == 3 and not state.degraded
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "available again" in messages[1]


def test_forget_user_erases_from_both_states() -> None:
    primary, fallback = MemoryOnlineState(), MemoryOnlineState()
    fallback.apply(TENANT, [event("u1", "a", minutes(0))], now=minutes(0))
    primary.apply(TENANT, [event("u1", "a", minutes(0))], now=minutes(0))
    FallbackOnlineState(primary, fallback).forget_user(TENANT, "u1")
    assert fallback.user_state(TENANT, "u1", now=minutes(1)).recent == []
    assert primary.user_state(TENANT, "u1", now=minutes(1)).recent == []
