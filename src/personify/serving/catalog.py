"""An in-memory snapshot of one tenant's catalogue for request-time filtering and explanations.

Loaded from the CatalogStore at start and kept current by ``upsert`` / ``remove`` calls made when
items change, so filters never hit the database per candidate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from personify.domain.items import Item


class CatalogSnapshot:
    """Thread-safe map of item id -> Item with a few secondary views."""

    def __init__(self, items: Iterable[Item] = ()) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Item] = {}
        self.get: Callable[[str], Item | None] = self._items.get
        """Item by id, or None (the dict's own lookup: the serving loops call it per candidate)."""
        self._by_author: dict[str, set[str]] = {}
        self._by_label: dict[str, set[str]] = {}
        self.version = 0
        """Incremented by every change, so readers can cache derived views."""
        self._newest: tuple[int, list[Item]] | None = None
        self._json: dict[str, bytes] = {}
        """Item id -> the item serialized as JSON, filled on first use (responses embed it)."""
        self.hidden: set[str] = set()
        """Ids of hidden items (the serving loop checks ids against these views, not items)."""
        self.unavailable: set[str] = set()
        """Ids of items out of stock / unavailable."""
        self.expiring: dict[str, datetime] = {}
        """Id -> expiry of the items that have one."""
        self.upsert(items)

    def upsert(self, items: Iterable[Item]) -> None:
        with self._lock:
            for item in items:
                old = self._items.get(item.item_id)
                if old is not None and old.author_id:
                    self._by_author.get(old.author_id, set()).discard(item.item_id)
                if old is not None:
                    for label in _labels(old):
                        self._by_label.get(label, set()).discard(item.item_id)
                for label in _labels(item):
                    self._by_label.setdefault(label, set()).add(item.item_id)
                self._items[item.item_id] = item
                self._json.pop(item.item_id, None)
                self._index_state(item.item_id, item)
                self.version += 1
                if item.author_id:
                    self._by_author.setdefault(item.author_id, set()).add(item.item_id)

    def remove(self, item_id: str) -> None:
        with self._lock:
            old = self._items.pop(item_id, None)
            self._json.pop(item_id, None)
            self._index_state(item_id, None)
            self.version += 1
            for label in _labels(old) if old is not None else ():
                self._by_label.get(label, set()).discard(item_id)
            if old is not None and old.author_id:
                self._by_author.get(old.author_id, set()).discard(item_id)

    def _index_state(self, item_id: str, item: Item | None) -> None:
        for view, member in ((self.hidden, item is not None and item.hidden),
                             (self.unavailable, item is not None and not item.available)):
            if member:
                view.add(item_id)
            else:
                view.discard(item_id)
        if item is not None and item.expires_at is not None:
            self.expiring[item_id] = item.expires_at
        else:
            self.expiring.pop(item_id, None)

    def servable(self, item_id: str, now: datetime, available_only: bool) -> bool:
        """In the catalogue, not hidden, in stock (when ``available_only``) and not expired:
        the visibility check of ``filters.item_filter``, by id against the views (the serving
        loop asks it for every candidate)."""
        if item_id in self.hidden or self._items.get(item_id) is None:
            return False
        if available_only and item_id in self.unavailable:
            return False
        expiry = self.expiring.get(item_id)
        return expiry is None or expiry > now

    def item_json(self, item_id: str) -> bytes | None:
        """The item as JSON (``Item.model_dump_json``), serialized once per item version."""
        found = self._json.get(item_id)
        if found is None:
            item = self._items.get(item_id)
            if item is None:
                return None
            found = item.model_dump_json().encode()
            with self._lock:
                if self._items.get(item_id) is item:
                    self._json[item_id] = found
        return found

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._items)

    def authored_by(self, user_id: str) -> set[str]:
        return set(self._by_author.get(user_id, ()))

    def with_label(self, label: str) -> list[str]:
        """Visible items with this category or tag (case-insensitive)."""
        return [i for i in self._by_label.get(label.lower(), ()) if not self._items[i].hidden]

    def ids(self) -> list[str]:
        return list(self._items)

    def newest(self, n: int, *, now: datetime | None = None) -> list[Item]:
        """Up to ``n`` visible items ordered by ``created_at``, newest first (the order is
        sorted once per catalogue version; a call walks it from the top)."""
        now = now or datetime.now(UTC)
        cached = self._newest
        if cached is None or cached[0] != self.version:
            version = self.version
            dated = [i for i in list(self._items.values()) if i.created_at is not None]
            dated.sort(key=lambda i: i.created_at or now, reverse=True)
            cached = self._newest = (version, dated)
        out: list[Item] = []
        for item in cached[1]:
            if item.hidden or item.created_at is None or item.created_at > now:
                continue
            out.append(item)
            if len(out) >= n:
                break
        return out


def _labels(item: Item) -> set[str]:
    return {c.lower() for c in item.categories} | {t.lower() for t in item.tags}
