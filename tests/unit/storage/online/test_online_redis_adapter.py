"""Redis-specific behaviour: shared between connections, bounded keys, Unavailable when down."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest
import redis

from personify.domain.errors import Unavailable
from personify.storage.online import open_online_state
from personify.storage.online.port import OnlineStateConfig
from personify.storage.online.redis import RedisOnlineState
from personify.testing.online_state_contracts import T0, TENANT, event, minutes

pytestmark = pytest.mark.redis


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def pair(redis_url: str, redis_prefix: str) -> Iterator[tuple[RedisOnlineState, RedisOnlineState]]:
    """Two independent clients (as in two server processes) on the same prefix."""
    a = RedisOnlineState.from_url(redis_url, redis_prefix)
    b = RedisOnlineState.from_url(redis_url, redis_prefix)
    yield a, b
    a.close()
    b.close()


def test_a_write_through_one_client_is_read_by_another(
    pair: tuple[RedisOnlineState, RedisOnlineState],
) -> None:
    writer, reader = pair
    writer.apply(TENANT, [event("u1", "a", T0), event("u1", "b", minutes(1))], now=minutes(1))
    writer.set_user_vector(TENANT, "m1", "u1", np.arange(3.0), now=minutes(1))
    user = reader.user_state(TENANT, "u1", now=minutes(2))
    assert [r.item_id for r in user.recent] == ["b", "a"]
    assert [i for i, _ in reader.trending(TENANT, 2, now=minutes(2))] == ["b", "a"]
    assert reader.neighbours(TENANT, "a", 3) == [("b", 1.0)]
    vector = reader.get_user_vector(TENANT, "m1", "u1", now=minutes(2))
    assert vector is not None and vector.tolist() == [0.0, 1.0, 2.0]
    reader.forget_user(TENANT, "u1")
    assert writer.user_state(TENANT, "u1", now=minutes(2)).recent == []


def test_another_process_sees_new_trending_within_the_refresh_bound(
    pair: tuple[RedisOnlineState, RedisOnlineState], monkeypatch: pytest.MonkeyPatch
) -> None:
    import personify.storage.online.redis as adapter

    monkeypatch.setattr(adapter, "TRENDING_REFRESH_S", 0.2)
    writer, reader = pair
    writer.apply(TENANT, [event("u1", "a", T0)], now=T0)
    assert [i for i, _ in reader.trending(TENANT, 2, now=minutes(1))] == ["a"]
    writer.apply(TENANT, [event(f"u{k}", "b", minutes(1)) for k in range(2, 5)], now=minutes(1))
    assert [i for i, _ in writer.trending(TENANT, 2, now=minutes(1))] == ["b", "a"], (
        "the writing process reads its own writes at once"
    )
    assert [i for i, _ in reader.trending(TENANT, 2, now=minutes(1))] == ["a"], (
        "another process may serve its ranking of up to the refresh bound ago"
    )
    time.sleep(0.25)
    assert [i for i, _ in reader.trending(TENANT, 2, now=minutes(1))] == ["b", "a"]


def test_keys_stay_under_the_tenant_prefix_and_user_keys_expire(
    redis_url: str, redis_prefix: str
) -> None:
    ttl = timedelta(days=2)
    state = RedisOnlineState.from_url(redis_url, redis_prefix, OnlineStateConfig(user_ttl=ttl))
    state.apply(TENANT, [event("u1", "a", T0, "purchase", country="DE")], now=T0)
    state.set_user_vector(TENANT, "m1", "u1", np.ones(2), now=T0)
    client = redis.Redis.from_url(redis_url)
    keys = sorted(k.decode() for k in client.scan_iter(match=f"{redis_prefix}:*"))
    base = f"{redis_prefix}:{TENANT}:"
    secret = f"{redis_prefix}:_subject_secret"  # generated once (no redis_key_secret set)
    assert keys and all(k.startswith(base) for k in keys if k != secret)
    person = state.subject(TENANT, "u1")
    for name in ("log", "seen", "bought", "vec"):
        remaining = client.pttl(f"{base}{name}:{person}")
        assert 0 < remaining <= ttl.total_seconds() * 1000, name
    assert client.pttl(f"{base}pop:country:DE") > 0
    client.close()
    state.close()


def test_factory_refuses_a_closed_port_with_unavailable() -> None:
    with pytest.raises(Unavailable) as info:
        open_online_state(f"redis://127.0.0.1:{closed_port()}/0", "ptest")
    assert info.value.field == "redis_url"


def test_every_call_on_a_dead_server_raises_unavailable() -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    state = RedisOnlineState.from_url(url, "ptest", check=False)
    calls = [
        lambda: state.apply(TENANT, [event("u1", "a", T0)], now=T0),
        lambda: state.user_state(TENANT, "u1"),
        lambda: state.trending(TENANT, 3),
        lambda: state.item_popularity(TENANT, ["a"]),
        lambda: state.neighbours(TENANT, "a", 3),
        lambda: state.set_user_vector(TENANT, "m", "u1", np.ones(2)),
        lambda: state.get_user_vector(TENANT, "m", "u1"),
        lambda: state.forget_user(TENANT, "u1"),
        lambda: state.merge_users(TENANT, "anon:s", "u1"),
    ]
    for call in calls:
        with pytest.raises(Unavailable):
            call()
    state.close()


def test_key_names_never_carry_plain_ids_and_erasure_leaves_none(
    redis_url: str, redis_prefix: str
) -> None:
    secret = b"s" * 32
    state = RedisOnlineState.from_url(redis_url, redis_prefix, key_secret=secret)
    other = RedisOnlineState.from_url(redis_url, redis_prefix, key_secret=secret)
    client = redis.Redis.from_url(redis_url)
    # a key an older release wrote under the plain id, still alive until its TTL
    client.rpush(f"{redis_prefix}:{TENANT}:log:anon:cookie-7", "[1.0,\"view\",\"a\",[]]")
    state.apply(TENANT, [event("alice-42", "a", T0, "purchase"), event("anon:cookie-7", "b", T0)],
                now=T0)
    state.set_user_vector(TENANT, "m1", "alice-42", np.ones(2), now=T0)
    assert other.user_state(TENANT, "alice-42", now=T0).recent, "processes agree on the names"

    def names() -> list[str]:
        return [k.decode() for k in client.scan_iter(match=f"{redis_prefix}:*")]

    def members() -> set[str]:
        return {m.decode() for m in client.zrange(f"{redis_prefix}:{TENANT}:active", 0, -1)}

    assert not [n for n in names() if "alice-42" in n], "no plain user id in a key name"
    assert "alice-42" not in members() and len(members()) == 2
    assert f"{redis_prefix}:_subject_secret" not in names(), "the configured secret is used"
    for person in ("alice-42", "anon:cookie-7"):
        state.forget_user(TENANT, person)
    assert not [n for n in names() if "alice-42" in n or "cookie-7" in n]
    assert not [n for n in names() if state.subject(TENANT, "alice-42") in n]
    assert members() == set()
    keyed = RedisOnlineState.from_url(redis_url, f"{redis_prefix}:x", key_secret=b"t" * 32)
    assert keyed.subject(TENANT, "alice-42") != state.subject(TENANT, "alice-42")
    for opened in (state, other, keyed):
        opened.close()
    client.close()
