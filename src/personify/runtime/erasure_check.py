"""A short-lived cache in front of ``ErasureStore.is_erased`` for the ingestion hot path.

Tombstones are permanent, so a "yes" is kept for good; a "no" is trusted for ``ttl`` seconds (an
erasure made through this process clears its entry at once; one made by another process is seen
within ``ttl``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from personify.storage.ports import ErasureStore


class CachedErasureCheck:
    """``(tenant, user_id) -> bool``: is this user erased? Bounded LRU with a TTL on negatives."""

    def __init__(
        self,
        erasures: ErasureStore,
        *,
        ttl: float = 2.0,
        max_entries: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.erasures = erasures
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[bool, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, tenant: str, user_id: str) -> bool:
        key = (tenant, user_id)
        now = self.clock()
        with self._lock:
            hit = self._fresh(key, now)
            if hit is not None:
                return hit
        erased = self.erasures.is_erased(tenant, user_id)
        with self._lock:
            self._remember(key, erased, now)
        return erased

    def _fresh(self, key: tuple[str, str], now: float) -> bool | None:
        hit = self._cache.get(key)
        if hit is not None and (hit[0] or hit[1] > now):
            return hit[0]
        return None

    def _remember(self, key: tuple[str, str], erased: bool, now: float) -> None:
        self._cache[key] = (erased, now + self.ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)

    def prefetch(self, tenant: str, user_ids: Iterable[str | None]) -> None:
        """Answer for every id of a batch in one store round trip, so the per-event checks that
        follow are cache hits."""
        now = self.clock()
        with self._lock:
            wanted = {
                user_id for user_id in user_ids
                if isinstance(user_id, str) and not self._fresh((tenant, user_id), now)
            }
        if not wanted:
            return
        erased = self.erasures.erased_among(tenant, wanted)
        with self._lock:
            for user_id in wanted:
                self._remember((tenant, user_id), user_id in erased, now)

    def mark_erased(self, tenant: str, user_id: str) -> None:
        """Record locally that ``user_id`` was just erased (no waiting for the TTL)."""
        with self._lock:
            self._cache[(tenant, user_id)] = (True, float("inf"))
