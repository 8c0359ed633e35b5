"""The per-person read cache: hits skip the store, every write (in this or another process)
invalidates, and it stays bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.errors import ConfigurationError
from personify.domain.privacy import Preferences
from personify.domain.users import User, UserPatch
from personify.privacy.preferences import MemoryPreferenceStore
from personify.storage.online import open_online_state
from personify.storage.online.memory import MemoryOnlineState
from personify.storage.person_cache import (
    CachedConsentStore,
    CachedPreferenceStore,
    CachedUserStore,
    LocalGenerations,
    PersonCache,
    RedisGenerations,
)
from personify.storage.registry import open_person_cache, open_stores

T = "default"


class Counting:
    """Counts calls to the wrapped store's reads."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name in ("get", "history") and callable(attr):
            def counted(*args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                return attr(*args, **kwargs)
            return counted
        return attr


def _grant(user: str, state: ConsentState = ConsentState.GRANTED, **extra: Any) -> ConsentRecord:
    return ConsentRecord(user_id=user, purpose="personalization", state=state, source="test",
                         **extra)


def test_reads_are_cached_until_a_write(tmp_path: Any) -> None:
    stores = open_stores(f"sqlite:///{tmp_path / 'p.db'}")
    cache = PersonCache()
    raw_users, raw_consents = Counting(stores.users), Counting(stores.consents)
    users = CachedUserStore(raw_users, cache)
    consents = CachedConsentStore(raw_consents, cache)
    users.upsert(T, [User(user_id="ann", properties={"tier": "gold"})])
    assert users.get(T, "ann").properties["tier"] == "gold"  # type: ignore[union-attr]
    assert users.get(T, "ann") is not None and raw_users.calls == 1
    users.patch(T, "ann", UserPatch(properties={"tier": "silver"}))
    assert users.get(T, "ann").properties["tier"] == "silver"  # type: ignore[union-attr]
    assert raw_users.calls == 2

    assert consents.current(T, "ann") == {}
    consents.append(T, _grant("ann"))
    assert consents.current(T, "ann")["personalization"].state == ConsentState.GRANTED
    consents.current(T, "ann")
    assert raw_consents.calls == 2
    consents.append(T, _grant("ann", ConsentState.WITHDRAWN))
    assert consents.current(T, "ann")["personalization"].state == ConsentState.WITHDRAWN
    assert users.delete(T, "ann") and users.get(T, "ann") is None
    assert consents.delete_user(T, "ann") == 2 and consents.current(T, "ann") == {}
    stores.close()


def test_expiry_is_evaluated_at_read_time(tmp_path: Any) -> None:
    stores = open_stores(f"sqlite:///{tmp_path / 'p.db'}")
    consents = CachedConsentStore(stores.consents, PersonCache())
    now = datetime.now(UTC)
    consents.append(T, _grant("bo", expires_at=now + timedelta(hours=1)))
    assert "personalization" in consents.current(T, "bo", now=now + timedelta(minutes=1))
    assert consents.current(T, "bo", now=now + timedelta(hours=2)) == {}
    stores.close()


def test_preferences_and_bounds() -> None:
    inner = Counting(MemoryPreferenceStore())
    cache = PersonCache(max_entries=2)
    prefs = CachedPreferenceStore(inner, cache)
    prefs.put(T, "a", Preferences(muted_items=["x"]))
    assert prefs.get(T, "a").muted_items == ["x"]
    prefs.get(T, "a")
    assert inner.calls == 1
    prefs.get(T, "b"), prefs.get(T, "c")  # evicts "a" (least recently used)
    prefs.get(T, "a")
    assert inner.calls == 4
    assert prefs.delete_user(T, "a") and prefs.get(T, "a") is None


def test_entries_are_trusted_for_max_age_only() -> None:
    clock = [0.0]
    inner = Counting(MemoryPreferenceStore())
    prefs = CachedPreferenceStore(inner, PersonCache(max_age_s=5, clock=lambda: clock[0]))
    prefs.get(T, "a")
    clock[0] = 4.0
    prefs.get(T, "a")
    assert inner.calls == 1
    clock[0] = 6.0
    prefs.get(T, "a")  # a write made outside the servers is seen after max_age_s
    assert inner.calls == 2


def test_a_write_racing_a_load_is_never_served_twice() -> None:
    generations = LocalGenerations()
    cache = PersonCache(generations)
    values = ["old"]

    def load() -> str:
        value = values[0]
        values[0] = "new"
        generations.bump(T, "a")  # a write lands while the old value is being read
        return value

    assert cache.read("user", T, "a", load) == "old"
    assert cache.read("user", T, "a", lambda: values[0]) == "new"


def test_processes_sharing_redis_see_each_others_writes(
    tmp_path: Any, redis_url: str, redis_prefix: str
) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    stores = open_stores(f"sqlite:///{tmp_path / 'shared.db'}")
    # two server processes: separate caches over one database and one Redis
    a = CachedConsentStore(stores.consents, PersonCache(RedisGenerations(client, redis_prefix)))
    raw = Counting(stores.consents)
    b = CachedConsentStore(raw, PersonCache(RedisGenerations(client, redis_prefix)))
    a.append(T, _grant("cy"))
    assert b.current(T, "cy")["personalization"].state == ConsentState.GRANTED
    b.current(T, "cy")
    assert raw.calls == 1
    a.append(T, _grant("cy", ConsentState.WITHDRAWN))  # withdrawn through process A
    assert b.current(T, "cy")["personalization"].state == ConsentState.WITHDRAWN
    generations = [k.decode() for k in client.scan_iter(f"{redis_prefix}:gen:{T}:*")]
    assert len(generations) == 1, "one counter for the person"
    assert not generations[0].endswith(":cy"), "named by a keyed hash, never the plain id"
    hashed = RedisGenerations(client, redis_prefix).subject(T, "cy")
    assert generations[0] == f"{redis_prefix}:gen:{T}:{hashed}"
    stores.close()
    client.close()


def test_redis_outage_reads_the_store() -> None:
    class Down:
        def get(self, key: str) -> None:
            raise ConnectionError("down")

        def pipeline(self, transaction: bool = True) -> Any:
            raise ConnectionError("down")

    inner = Counting(MemoryPreferenceStore())
    prefs = CachedPreferenceStore(inner, PersonCache(RedisGenerations(Down(), "p")))
    prefs.put(T, "a", Preferences(muted_items=["x"]))  # the bump fails: logged, not raised
    assert prefs.get(T, "a").muted_items == ["x"]
    prefs.get(T, "a")
    assert inner.calls == 2  # nothing is trusted without the shared generation


@pytest.mark.parametrize("kind", ["user", "consents", "preferences"])
def test_invalidate_drops_every_kind(kind: str) -> None:
    cache = PersonCache()
    cache.read(kind, T, "a", lambda: 1)
    cache.invalidate(T, "a")
    assert cache.read(kind, T, "a", lambda: 2) == 2


def test_local_generations_stay_bounded_and_never_match_a_forgotten_one() -> None:
    generations = LocalGenerations(max_people=2)
    cache = PersonCache(generations)
    assert cache.read("user", T, "a", lambda: "old") == "old"  # cached under the floor (0)
    generations.bump(T, "a")  # a write racing nothing: the entry no longer matches
    for person in ("b", "c", "d"):
        generations.bump(T, person)  # "a" is forgotten
    assert len(generations._values) == 2
    assert generations.get(T, "a") > 1  # the floor rose above every forgotten generation
    assert cache.read("user", T, "a", lambda: "new") == "new"


# -- opened by URL (storage.registry.open_person_cache) -----------------------------------------


def _loads(cache: PersonCache, person: str, counter: list[int]) -> Any:
    def load() -> str:
        counter[0] += 1
        return f"profile-{counter[0]}"

    return cache.read("user", T, person, load)


@pytest.mark.parametrize("url", [None, "memory://"])
def test_an_in_process_cache_by_url_is_local_to_its_process(url: str | None) -> None:
    one, other = open_person_cache(url), open_person_cache(url)
    assert isinstance(one.generations, LocalGenerations)
    loads = [0]
    assert _loads(one, "ann", loads) == "profile-1"
    other.invalidate(T, "ann")  # another process's write: not seen without a shared Redis
    assert _loads(one, "ann", loads) == "profile-1" and loads == [1]
    one.invalidate(T, "ann")
    assert _loads(one, "ann", loads) == "profile-2"


@pytest.mark.redis
def test_caches_opened_by_one_redis_url_invalidate_each_other(
    redis_url: str, redis_prefix: str
) -> None:
    secret = b"k" * 32
    one = open_person_cache(redis_url, redis_prefix, key_secret=secret)
    other = open_person_cache(redis_url, redis_prefix, key_secret=secret)
    assert isinstance(one.generations, RedisGenerations)
    loads = [0]
    assert _loads(one, "ann", loads) == "profile-1"
    assert _loads(one, "ann", loads) == "profile-1"  # a hit
    other.invalidate(T, "ann")  # a write in another process
    assert _loads(one, "ann", loads) == "profile-2"
    assert _loads(one, "bob", loads) == "profile-3"  # someone else unaffected by ann's writes
    other.invalidate(T, "ann")
    assert _loads(one, "bob", loads) == "profile-3"


@pytest.mark.redis
def test_the_cache_shares_the_online_states_redis(redis_url: str, redis_prefix: str) -> None:
    state = open_online_state(redis_url, redis_prefix)
    cache = open_person_cache(redis_url, redis_prefix, online_state=state)
    assert isinstance(cache.generations, RedisGenerations)
    assert cache.generations.client is state.client  # type: ignore[attr-defined]
    fell_back: list[str] = []
    local = open_person_cache(redis_url, redis_prefix, online_state=MemoryOnlineState(),
                              warnings=fell_back)
    assert isinstance(local.generations, LocalGenerations) and "person cache" in fell_back[0]


def test_an_unreachable_redis_sends_every_read_to_the_database() -> None:
    cache = open_person_cache("redis://127.0.0.1:1/0", "personify")
    loads = [0]
    assert _loads(cache, "ann", loads) == "profile-1"
    assert _loads(cache, "ann", loads) == "profile-2"  # never served from an unverifiable entry


@pytest.mark.parametrize(("url", "prefix", "field"), [
    ("postgresql://db/x", "personify", "redis_url"),
    ("redis://localhost:6379/0", "has blank", "redis_prefix"),
])
def test_a_bad_url_or_prefix_names_its_setting(url: str, prefix: str, field: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        open_person_cache(url, prefix)
    assert refused.value.field == field and refused.value.accepted
