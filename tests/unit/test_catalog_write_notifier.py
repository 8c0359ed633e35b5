"""CatalogWriteNotifier: listeners hear of stored writes only, with the types written."""

from __future__ import annotations

from typing import Any

import pytest

from personify.domain.errors import NotFound
from personify.domain.items import Item, ItemPatch
from personify.storage.catalog_writes import CatalogWriteNotifier
from personify.storage.registry import open_stores


def test_listeners_hear_of_stored_writes(tmp_path: Any) -> None:
    stores = open_stores(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        catalog = CatalogWriteNotifier(stores.catalog)
        heard: list[tuple[str, frozenset[str] | None]] = []
        catalog.listeners.append(lambda tenant, types: heard.append((tenant, types)))
        catalog.upsert("t", [Item(item_id="a", type="event"), Item(item_id="b", type="post")])
        assert heard == [("t", frozenset({"event", "post"}))]
        catalog.upsert("t", [])
        assert len(heard) == 1  # nothing written, nobody told
        catalog.patch("t", "a", ItemPatch(title="A"))
        assert heard[-1] == ("t", None)
        with pytest.raises(NotFound):
            catalog.patch("t", "missing", ItemPatch(title="x"))
        assert len(heard) == 2  # a failed write tells nobody
        assert catalog.delete("t", "missing") is False and len(heard) == 2
        assert catalog.delete("t", "b") is True and heard[-1] == ("t", None)
        assert catalog.get("t", "a") is not None  # reads pass through
        assert catalog.get("t", "a").title == "A"  # type: ignore[union-attr]
    finally:
        stores.close()
