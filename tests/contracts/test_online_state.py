"""The online state contract against the in-process and the Redis adapters."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from personify.storage.online.memory import MemoryOnlineState
from personify.storage.online.port import OnlineState, OnlineStateConfig
from personify.testing.online_state_contracts import MakeState, OnlineStateContract


class TestMemoryOnlineState(OnlineStateContract):
    @pytest.fixture
    def make_state(self) -> MakeState:
        def make(config: OnlineStateConfig | None) -> OnlineState:
            return MemoryOnlineState(config)

        return make


@pytest.mark.redis
class TestRedisOnlineState(OnlineStateContract):
    @pytest.fixture
    def make_state(self, redis_url: str, redis_prefix: str) -> Iterator[MakeState]:
        from personify.storage.online.redis import RedisOnlineState

        opened: list[RedisOnlineState] = []
        numbers = itertools.count()

        def make(config: OnlineStateConfig | None) -> OnlineState:
            state = RedisOnlineState.from_url(redis_url, f"{redis_prefix}:{next(numbers)}", config)
            opened.append(state)
            return state

        yield make
        for state in opened:
            state.close()
