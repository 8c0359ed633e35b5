"""The catalogue snapshot's id views (hidden, unavailable, expiring) the serving loop checks
candidates against: they follow every upsert and removal, and agree with the item filter."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from personify.domain.items import Item
from personify.serving.catalog import CatalogSnapshot
from personify.serving.filters import item_filter
from personify.serving.request import Filters

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _visible_by_views(catalog: CatalogSnapshot, item_id: str, available_only: bool) -> bool:
    expiry = catalog.expiring.get(item_id)
    return (
        item_id in catalog
        and item_id not in catalog.hidden
        and not (available_only and item_id in catalog.unavailable)
        and (expiry is None or expiry > NOW)
    )


def test_views_follow_changes_and_agree_with_the_item_filter() -> None:
    rng = random.Random(3)
    catalog = CatalogSnapshot()
    for step in range(400):
        item_id = f"i{rng.randrange(30)}"
        if rng.random() < 0.15:
            catalog.remove(item_id)
            continue
        catalog.upsert([Item(
            item_id=item_id,
            hidden=rng.random() < 0.3,
            available=rng.random() < 0.7,
            expires_at=rng.choice([None, NOW - timedelta(days=1), NOW + timedelta(days=1)]),
        )])
        if step % 20 == 0:
            for available_only in (True, False):
                allowed = item_filter(Filters(available_only=available_only), [], NOW)
                for k in range(30):
                    i = f"i{k}"
                    item = catalog.get(i)
                    expected = item is not None and allowed(item)
                    assert _visible_by_views(catalog, i, available_only) == expected, (step, i)
