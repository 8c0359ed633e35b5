"""Per-tenant catalogue snapshots, loaded lazily from the CatalogStore and kept current by a
write-through wrapper around that store (and a periodic reload for changes made by other
processes)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from personify.domain.items import Item, ItemPatch
from personify.serving.catalog import CatalogSnapshot
from personify.storage.ports import CatalogStore


class CatalogCache:
    """``get(tenant)`` returns that tenant's snapshot; snapshots older than ``max_age_s`` are
    reloaded in the background while the old one keeps serving."""

    def __init__(self, store: CatalogStore, *, max_age_s: float = 300.0) -> None:
        self.store = store
        self.max_age_s = max_age_s
        self._snapshots: dict[str, tuple[float, CatalogSnapshot]] = {}
        self._lock = threading.Lock()
        self._reloading: set[str] = set()

    def get(self, tenant: str) -> CatalogSnapshot:
        entry = self._snapshots.get(tenant)
        if entry is None:
            with self._lock:
                entry = self._snapshots.get(tenant)
                if entry is None:
                    entry = (time.monotonic(), CatalogSnapshot(self.store.scan(tenant)))
                    self._snapshots[tenant] = entry
        elif time.monotonic() - entry[0] > self.max_age_s and tenant not in self._reloading:
            self._reloading.add(tenant)
            threading.Thread(target=self._reload, args=(tenant,), daemon=True).start()
        return entry[1]

    def _reload(self, tenant: str) -> None:
        try:
            fresh = CatalogSnapshot(self.store.scan(tenant))
            self._snapshots[tenant] = (time.monotonic(), fresh)
        finally:
            self._reloading.discard(tenant)

    def upserted(self, tenant: str, items: Sequence[Item]) -> None:
        entry = self._snapshots.get(tenant)
        if entry is not None:
            entry[1].upsert(items)

    def removed(self, tenant: str, item_id: str) -> None:
        entry = self._snapshots.get(tenant)
        if entry is not None:
            entry[1].remove(item_id)


class WriteThroughCatalog:
    """A CatalogStore that tells the cache about every change it stores."""

    def __init__(self, store: CatalogStore, cache: CatalogCache) -> None:
        self._store = store
        self._cache = cache

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def upsert(self, tenant: str, items: Sequence[Item]) -> list[Item]:
        stored = self._store.upsert(tenant, items)
        self._cache.upserted(tenant, stored)
        return stored

    def patch(self, tenant: str, item_id: str, patch: ItemPatch) -> Item:
        item = self._store.patch(tenant, item_id, patch)
        self._cache.upserted(tenant, [item])
        return item

    def delete(self, tenant: str, item_id: str) -> bool:
        deleted = self._store.delete(tenant, item_id)
        self._cache.removed(tenant, item_id)
        return deleted
