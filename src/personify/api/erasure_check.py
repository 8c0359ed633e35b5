"""A short-lived cache in front of ``ErasureStore.is_erased`` for the ingestion hot path.

Tombstones are permanent, so a "yes" is kept for good; a "no" is trusted for ``ttl`` seconds (an
erasure made through this process clears its entry at once; one made by another process is seen
within ``ttl``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

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
            hit = self._cache.get(key)
            if hit is not None and (hit[0] or hit[1] > now):
                return hit[0]
        erased = self.erasures.is_erased(tenant, user_id)
        with self._lock:
            self._cache[key] = (erased, now + self.ttl)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return erased

    def mark_erased(self, tenant: str, user_id: str) -> None:
        """Record locally that ``user_id`` was just erased (no waiting for the TTL)."""
        with self._lock:
            self._cache[(tenant, user_id)] = (True, float("inf"))
