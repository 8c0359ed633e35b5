"""open_online_state picks the adapter by URL scheme and refuses anything else clearly."""

from __future__ import annotations

import pytest

from personify.domain.errors import ConfigurationError
from personify.storage.online import MemoryOnlineState, open_online_state


@pytest.mark.parametrize("url", [None, "memory://"])
def test_in_process_urls(url: str | None) -> None:
    assert isinstance(open_online_state(url, "p"), MemoryOnlineState)


def test_unknown_scheme_names_the_field_and_accepted_values() -> None:
    with pytest.raises(ConfigurationError) as info:
        open_online_state("postgresql://localhost/db", "p")
    assert info.value.field == "redis_url" and "redis://" in (info.value.accepted or "")


def test_blank_redis_prefix_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        open_online_state("redis://127.0.0.1:6379/0", "")
    assert info.value.field == "redis_prefix"


@pytest.mark.redis
def test_redis_url_opens_the_shared_state(redis_url: str, redis_prefix: str) -> None:
    from personify.storage.online.redis import RedisOnlineState

    state = open_online_state(redis_url, redis_prefix)
    assert isinstance(state, RedisOnlineState)
    state.close()
