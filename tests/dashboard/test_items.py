"""Items page: browse by type and title, performance figures, similar items."""

from __future__ import annotations

import time

from fastapi import FastAPI

from personify.domain.items import Item
from personify.storage.registry import Stores

from .conftest import TestClient
from .shop import TENANT


def wait_for_stats(app: FastAPI) -> None:
    deadline = time.monotonic() + 20
    while app.state.dashboard.stats.get(TENANT) is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_browse_by_type_and_title(client: TestClient, shop_stores: Stores) -> None:
    shop_stores.catalog.upsert(TENANT, [Item(item_id="ev1", type="event", title="Meet-up")])
    events = client.get("/dashboard/items?type=event")
    assert "/dashboard/items/ev1" in events.text and "/dashboard/items/i01" not in events.text
    lamps = client.get("/dashboard/items?q=Lamp")
    assert "/dashboard/items/i01" in lamps.text and "/dashboard/items/i02" not in lamps.text


def test_item_performance_from_events(app: FastAPI, client: TestClient,
                                      shop_stores: Stores) -> None:
    wait_for_stats(app)
    totals = app.state.dashboard.stats.get(TENANT).items["i01"]
    page = client.get("/dashboard/items/i01")
    assert page.status_code == 200
    assert f'<div class="card-value">{totals.views}</div>' in page.text
    assert 'data-chart=' in page.text and "Show the numbers" in page.text
    listing = client.get("/dashboard/items?q=Lamp")
    assert "Performance figures are being computed" not in listing.text
    assert client.get("/dashboard/items/nothing").status_code == 404


def test_similar_items_panel(client: TestClient) -> None:
    panel = client.get("/dashboard/items/i01/similar")
    assert panel.status_code == 200
    assert panel.text.count('class="reco-title"') >= 3
    assert "Similar to" in panel.text
