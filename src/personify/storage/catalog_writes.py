"""A catalogue store that tells listeners about every write, after it is stored.

Caches of catalogue items (the networking feed's pool of events, groups, projects and posts) hold
this process's copy for a moment; a write through this process calls every listener with the
tenant and the item types written (None when not known: a delete), so the next read sees it at
once. Writes made by another process still reach the cache within its lifetime.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from personify.domain.items import Item, ItemPatch
from personify.storage.ports import CatalogStore

CatalogListener = Callable[[str, "frozenset[str] | None"], None]
"""``(tenant, item types written or None for any) -> None``; called after the write."""


class CatalogWriteNotifier:
    """A :class:`CatalogStore` whose ``upsert``, ``patch`` and ``delete`` call ``listeners``
    once stored (a failed write calls nobody). Every other method is the wrapped store's."""

    def __init__(self, store: CatalogStore) -> None:
        self._store = store
        self.listeners: list[CatalogListener] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _tell(self, tenant: str, types: frozenset[str] | None) -> None:
        for listener in self.listeners:
            listener(tenant, types)

    def upsert(self, tenant: str, items: Sequence[Item]) -> list[Item]:
        stored = self._store.upsert(tenant, items)
        if stored:
            self._tell(tenant, frozenset(i.type for i in stored))
        return stored

    def patch(self, tenant: str, item_id: str, patch: ItemPatch) -> Item:
        item = self._store.patch(tenant, item_id, patch)
        self._tell(tenant, None)  # a patch may change the type: every type's copy is stale
        return item

    def delete(self, tenant: str, item_id: str) -> bool:
        removed = self._store.delete(tenant, item_id)
        if removed:
            self._tell(tenant, None)
        return removed
