"""Item updates that start journeys: a price drop, an item back in stock, and a new item worth
announcing ("new for you": a new event, post, article or episode).

When the catalogue stores a new version of an item, :func:`detect_item_changes` compares it with
the stored one and yields the internal trigger events ``item.price_dropped`` (a lower price in
the same currency) and ``item.back_in_stock`` (``available`` from false to true).
:class:`ItemChangeWatcher` wraps a catalogue store so every upsert and patch is compared and
the changes are handed to a callback (the service records them in a durable queue, the
:class:`ItemChangeStore`, which the messaging loop drains into the journey engine). Who viewed
an item recently comes from the :class:`ItemViewStore`, fed with the view events journeys see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal, Protocol

from personify.domain.items import Item, ItemPatch
from personify.storage.ports import CatalogStore

ChangeKind = Literal["item.price_dropped", "item.back_in_stock", "item.new_for_you"]
PRICE_DROPPED: Final = "item.price_dropped"
BACK_IN_STOCK: Final = "item.back_in_stock"
NEW_FOR_YOU: Final = "item.new_for_you"
TRIGGER_KINDS: dict[str, ChangeKind] = {
    "price_drop": PRICE_DROPPED,
    "back_in_stock": BACK_IN_STOCK,
    "new_for_you": NEW_FOR_YOU,
}
ANNOUNCED_TYPES = frozenset({"event", "post", "article", "episode"})
"""Item types whose creation is an ``item.new_for_you`` (its audience is asked of the
``new_item_audience`` hook: group members, series followers, people on its topics)."""
"""Journey ``trigger.item_update`` values -> the internal event each one listens to."""


@dataclass(frozen=True)
class ItemChange:
    """One internal trigger event about an item (see the module docstring)."""

    tenant: str
    item_id: str
    kind: ChangeKind
    at: datetime
    title: str = ""
    old_price: float | None = None
    new_price: float | None = None
    currency: str | None = None

    @property
    def drop_percent(self) -> float:
        """How much cheaper the item became, in percent of the old price (0 when not a drop)."""
        if self.kind != PRICE_DROPPED or not self.old_price or self.new_price is None:
            return 0.0
        return 100.0 * (self.old_price - self.new_price) / self.old_price

    def event_context(self) -> dict[str, Any]:
        """The ``event`` variables of messages this change triggers."""
        return {
            "type": self.kind,
            "item_id": self.item_id,
            "item_title": self.title,
            "old_price": self.old_price,
            "new_price": self.new_price,
            "price": self.new_price,
            "currency": self.currency,
            "drop_percent": round(self.drop_percent, 1),
        }

    def to_record(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "old_price": self.old_price,
            "new_price": self.new_price,
            "currency": self.currency,
        }


def detect_item_changes(
    tenant: str, before: Item | None, after: Item, now: datetime
) -> list[ItemChange]:
    """The trigger events of storing ``after`` over ``before`` (None: a new item, which is an
    ``item.new_for_you`` when of an announced type).

    A price drop needs a price before and after, in the same currency (or both without one);
    a hidden item never triggers anything.
    """
    if after.hidden:
        return []
    if before is None:
        if after.type in ANNOUNCED_TYPES and after.available:
            return [ItemChange(tenant=tenant, item_id=after.item_id, kind=NEW_FOR_YOU, at=now,
                               title=after.title)]
        return []
    changes: list[ItemChange] = []

    def change(kind: ChangeKind) -> ItemChange:
        return ItemChange(
            tenant=tenant,
            item_id=after.item_id,
            kind=kind,
            at=now,
            title=after.title,
            old_price=before.price,
            new_price=after.price,
            currency=after.currency,
        )

    if (
        before.price is not None
        and after.price is not None
        and after.price < before.price
        and (before.currency or None) == (after.currency or None)
        and after.available
    ):
        changes.append(change(PRICE_DROPPED))
    if not before.available and after.available:
        changes.append(change(BACK_IN_STOCK))
    return changes


ChangeSink = Callable[[str, list[ItemChange]], None]
"""(tenant, changes) -> None: where a watcher hands the changes of one write."""


class ItemChangeWatcher:
    """A :class:`CatalogStore` that compares every stored item with its previous version and
    hands the price drops and restocks to ``sink``. ``wants(tenant)`` says whether anyone
    listens for the tenant (otherwise writes cost nothing extra: no read before the write).
    Every other method is the wrapped store's."""

    def __init__(
        self,
        store: CatalogStore,
        sink: ChangeSink,
        *,
        wants: Callable[[str], bool] = lambda tenant: True,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._sink = sink
        self._wants = wants
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def upsert(self, tenant: str, items: Sequence[Item]) -> list[Item]:
        if not items or not self._wants(tenant):
            return self._store.upsert(tenant, items)
        before = self._store.get_many(tenant, [i.item_id for i in items])
        stored = self._store.upsert(tenant, items)
        self._hand_over(tenant, before, stored)
        return stored

    def patch(self, tenant: str, item_id: str, patch: ItemPatch) -> Item:
        if not self._wants(tenant):
            return self._store.patch(tenant, item_id, patch)
        before = self._store.get_many(tenant, [item_id])
        item = self._store.patch(tenant, item_id, patch)
        self._hand_over(tenant, before, [item])
        return item

    def _hand_over(self, tenant: str, before: dict[str, Item], after: Iterable[Item]) -> None:
        now = self._clock()
        changes = [
            change
            for item in after
            for change in detect_item_changes(tenant, before.get(item.item_id), item, now)
        ]
        if changes:
            self._sink(tenant, changes)


class ItemChangeStore(Protocol):
    """A durable queue of item changes waiting for the journey engine (at least once)."""

    def record(self, changes: Sequence[ItemChange]) -> None: ...

    def claim(self, now: datetime, *, limit: int, lease: timedelta) -> list[tuple[int, ItemChange]]:
        """Up to ``limit`` changes not leased by anyone, leased until ``now + lease``."""
        ...

    def done(self, ids: Sequence[int]) -> None:
        """Forget handled changes."""
        ...

    def prune(self, before: datetime) -> int:
        """Drop changes that happened before ``before`` (never handled: too old to matter)."""
        ...


class ItemViewStore(Protocol):
    """Who viewed which item, and when last: the audience of price-drop / restock journeys."""

    def record_views(self, tenant: str, views: Sequence[tuple[str, str, datetime]]) -> None:
        """``(item_id, user_id, viewed_at)``; keeps the latest time per (item, person)."""
        ...

    def viewers(self, tenant: str, item_id: str, since: datetime, *, limit: int) -> list[str]:
        """People who viewed the item at or after ``since``, most recent first."""
        ...

    def prune(self, before: datetime) -> int:
        """Forget views older than ``before``."""
        ...

    def delete_user(self, tenant: str, user_id: str) -> int:
        """Erasure: every view of the person."""
        ...

    def backfilled(self, tenant: str) -> bool:
        """True once :meth:`mark_backfilled` was called for the tenant."""
        ...

    def mark_backfilled(self, tenant: str, at: datetime) -> None: ...
