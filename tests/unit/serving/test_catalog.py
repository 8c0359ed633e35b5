"""The catalogue snapshot's id-based visibility check (``servable``, what the serving loop asks
per candidate): its views follow every upsert and removal, and it agrees with the item filter."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from personify.domain.items import Item
from personify.serving.catalog import CatalogSnapshot
from personify.serving.filters import item_filter
from personify.serving.request import Filters

NOW = datetime(2026, 11, 1, tzinfo=UTC)


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
                    assert catalog.servable(i, NOW, available_only) == expected, (step, i)
