"""Per-person reads the serving chain makes on every request — the profile, the consent log and
the privacy preferences — cached in the process and never stale.

Each cached entry carries the person's *generation*; every write through the wrapped stores
(profile upsert / patch / delete, consent append, preference change, erasure) bumps it before
returning, and a read serves the cached value only while the generation is unchanged. In one
process the generations live in a dict; when several server processes share a Redis, they live
there (one ``GET`` per read instead of a database query), so a consent withdrawn through one
worker holds on the very next call to any other.

Consent, restriction and preferences change only through the API and the dashboard (server
processes), so they always invalidate. Profile rows the CLI imports straight into the database
are seen within ``max_age_s`` (default 5 minutes), the longest an entry is trusted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from personify.domain.consents import ConsentRecord, current_consents
from personify.domain.errors import Unavailable
from personify.domain.users import User, UserPatch
from personify.storage.ports import ConsentStore, UserStore

log = logging.getLogger(__name__)


class Generations(Protocol):
    """A counter per (tenant, person), bumped by every write about that person."""

    def get(self, tenant: str, person: str) -> int: ...

    def bump(self, tenant: str, person: str) -> None: ...


class LocalGenerations:
    """Generations of one process (enough when one process serves), bounded: the least
    recently written people are forgotten beyond ``max_people``, and a forgotten or never
    written person reads as a *floor* raised above every forgotten value, so an entry cached
    under a forgotten generation can never match again (at worst one extra database read)."""

    def __init__(self, max_people: int = 500_000) -> None:
        self.max_people = max_people
        self._values: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._floor = 0
        self._lock = threading.Lock()

    def get(self, tenant: str, person: str) -> int:
        return self._values.get((tenant, person), self._floor)

    def bump(self, tenant: str, person: str) -> None:
        with self._lock:
            key = (tenant, person)
            self._values[key] = max(self._values.get(key, self._floor), self._floor) + 1
            self._values.move_to_end(key)
            while len(self._values) > self.max_people:
                _, forgotten = self._values.popitem(last=False)
                self._floor = max(self._floor, forgotten + 1)


class RedisGenerations:
    """Generations shared by every process on one Redis (``{prefix}:gen:{tenant}:{person}``,
    expiring after a day without writes — a missing counter reads as a fresh generation, which
    at worst costs one database read). ``{person}`` is ``subject(tenant, person)``, the online
    state's keyed hash (never the plain id: an erasure bumps the generation, and a key named
    after the person would outlive them by a day)."""

    TTL_S = 86_400

    def __init__(
        self, client: Any, prefix: str, subject: Callable[[str, str], str] | None = None
    ) -> None:
        self.client, self.prefix = client, prefix
        if subject is None:
            from personify.storage.online.redis import SubjectKeys

            subject = SubjectKeys(client, prefix)
        self.subject = subject

    def _key(self, tenant: str, person: str) -> str:
        return f"{self.prefix}:gen:{tenant}:{self.subject(tenant, person)}"

    def get(self, tenant: str, person: str) -> int:
        try:
            raw = self.client.get(self._key(tenant, person))  # the key too: it may read Redis
        except Exception as exc:  # a Redis outage: the caller reads the database
            raise Unavailable(f"Redis: {exc}", field="redis_url") from exc
        return int(raw) if raw is not None else 0

    def bump(self, tenant: str, person: str) -> None:
        key = self._key(tenant, person)
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, self.TTL_S)
        # the plain-id name releases before 2026-12 used (gone a day after the upgrade anyway)
        pipe.delete(f"{self.prefix}:gen:{tenant}:{person}")
        pipe.execute()


class PersonCache:
    """A bounded LRU of (kind, tenant, person) -> (generation, stored at, value)."""

    def __init__(
        self,
        generations: Generations | None = None,
        *,
        max_entries: int = 100_000,
        max_age_s: float = 300.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.generations = generations or LocalGenerations()
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        self.clock = clock
        self._entries: OrderedDict[tuple[str, str, str], tuple[int, float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def read(self, kind: str, tenant: str, person: str, load: Any) -> Any:
        """The cached value, or ``load()`` stored under the generation read *before* loading
        (a write racing the load bumps it, so the stale value is never served twice)."""
        try:
            generation = self.generations.get(tenant, person)
        except Unavailable:
            return load()
        key = (kind, tenant, person)
        now = self.clock()
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[0] == generation and now - found[1] < self.max_age_s:
                self._entries.move_to_end(key)
                self.hits += 1
                return found[2]
        self.misses += 1
        value = load()
        with self._lock:
            self._entries[key] = (generation, now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def invalidate(self, tenant: str, person: str) -> None:
        """A write about ``person``: bump the generation (every process) and drop local entries."""
        with self._lock:
            for kind in ("user", "consents", "preferences"):
                self._entries.pop((kind, tenant, person), None)
        try:
            self.generations.bump(tenant, person)
        except Exception as exc:  # Redis down: other processes read the database meanwhile
            log.warning("could not publish a person-cache invalidation: %s", type(exc).__name__)


class CachedUserStore:
    """A :class:`UserStore` whose ``get`` is cached; every write invalidates its people."""

    def __init__(self, inner: UserStore, cache: PersonCache) -> None:
        self.inner, self.cache = inner, cache

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get(self, tenant: str, user_id: str) -> User | None:
        found: User | None = self.cache.read(
            "user", tenant, user_id, lambda: self.inner.get(tenant, user_id)
        )
        return found

    def upsert(self, tenant: str, users: Sequence[User]) -> list[User]:
        try:
            return self.inner.upsert(tenant, users)
        finally:
            for user in users:
                self.cache.invalidate(tenant, user.user_id)

    def patch(self, tenant: str, user_id: str, patch: UserPatch) -> User:
        try:
            return self.inner.patch(tenant, user_id, patch)
        finally:
            self.cache.invalidate(tenant, user_id)

    def delete(self, tenant: str, user_id: str) -> bool:
        try:
            return self.inner.delete(tenant, user_id)
        finally:
            self.cache.invalidate(tenant, user_id)


class CachedConsentStore:
    """A :class:`ConsentStore` whose per-person history is cached (``current`` is folded from
    it at the asked moment, so expiries need no invalidation)."""

    def __init__(self, inner: ConsentStore, cache: PersonCache) -> None:
        self.inner, self.cache = inner, cache

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def history(self, tenant: str, user_id: str) -> list[ConsentRecord]:
        found: list[ConsentRecord] = self.cache.read(
            "consents", tenant, user_id, lambda: self.inner.history(tenant, user_id)
        )
        return list(found)

    def current(
        self, tenant: str, user_id: str, *, now: datetime | None = None
    ) -> dict[str, ConsentRecord]:
        moment = now if now is not None else datetime.now(UTC)
        return current_consents(self.history(tenant, user_id), moment)

    def append(self, tenant: str, record: ConsentRecord) -> ConsentRecord:
        try:
            return self.inner.append(tenant, record)
        finally:
            self.cache.invalidate(tenant, record.user_id)

    def delete_user(self, tenant: str, user_id: str) -> int:
        try:
            return self.inner.delete_user(tenant, user_id)
        finally:
            self.cache.invalidate(tenant, user_id)


class CachedPreferenceStore:
    """A preference store (``get`` / ``put`` / ``delete_user``) with ``get`` cached."""

    def __init__(self, inner: Any, cache: PersonCache) -> None:
        self.inner, self.cache = inner, cache

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get(self, tenant: str, user_id: str) -> Any:
        return self.cache.read(
            "preferences", tenant, user_id, lambda: self.inner.get(tenant, user_id)
        )

    def put(self, tenant: str, user_id: str, preferences: Any) -> Any:
        try:
            return self.inner.put(tenant, user_id, preferences)
        finally:
            self.cache.invalidate(tenant, user_id)

    def delete_user(self, tenant: str, user_id: str) -> bool:
        try:
            return bool(self.inner.delete_user(tenant, user_id))
        finally:
            self.cache.invalidate(tenant, user_id)

