"""Frequently bought together and buy it again, served: trained from purchases into the bundle,
``GET /v1/items/{id}/bought-together``, the ``bought_together`` source in the chain and the
``buy_again`` source on request (exempt from the bought exclusion)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.jobs.training import TrainingConfig, train_tenant
from personify.settings import Settings

if TYPE_CHECKING:
    from conftest import TenantKeys

NOW = datetime.now(UTC)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, model_dir=str(tmp_path / "models"), demo=False)


def _purchase(user: str, item: str, order: int, days_ago: float) -> dict[str, Any]:
    return {"event_id": f"p-{user}-{item}-{order}", "type": "purchase", "user_id": user,
            "item_id": item, "timestamp": (NOW - timedelta(days=days_ago)).isoformat()}


def _seed(client: TestClient, keys: TenantKeys) -> None:
    for i in range(20):
        body = {"title": f"Item {i}", "categories": ["kitchen" if i < 10 else "garden"]}
        r = client.put(f"/v1/items/i{i}", json=body, headers=keys.headers("admin"))
        assert r.status_code == 200
    events = []
    # tea (i0) goes with cups (i1) in most orders; i2 with i3; one regular buys i5 again and again
    for u in range(12):
        events += [_purchase(f"u{u}", "i0", 1, 20 + u), _purchase(f"u{u}", "i1", 1, 20 + u),
                   _purchase(f"u{u}", f"i{6 + u % 4}", 2, 10 + u)]
        events += [_purchase(f"v{u}", "i2", 1, 15 + u), _purchase(f"v{u}", "i3", 1, 15 + u)]
    events += [_purchase("regular", "i5", k, 40 - 10 * k) for k in range(4)]
    events += [_purchase("regular", "i0", 9, 3)]
    r = client.post("/v1/events/batch", json={"events": events}, headers=keys.headers("ingest"))
    assert r.status_code == 200, r.text
    for user in ("regular", "shopper"):
        for purpose in ("personalization", "profiling"):
            r = client.post(f"/v1/users/{user}/consents", headers=keys.headers("admin"),
                            json={"purpose": purpose, "state": "granted", "text_version": "v1"})
            assert r.status_code == 201, r.text


def _train(app: FastAPI) -> None:
    engine, stores = app.state.runtime.engine, app.state.runtime.stores
    train_tenant(stores.events, engine.models, "default", TrainingConfig(learn_blend=False),
                 catalog=stores.catalog, users=stores.users)
    engine.bundles.refresh()
    bundle = engine.bundles.get("default")
    assert bundle.part("bought_together") is not None and bundle.part("buy_again") is not None


def test_bought_together_endpoint_and_source(
    client: TestClient, app: FastAPI, tenant_a: TenantKeys
) -> None:
    _seed(client, tenant_a)
    h = tenant_a.headers("serve")
    before = client.get("/v1/items/i0/bought-together", headers=h)
    assert before.status_code == 200 and before.json()["items"] == []
    assert any("no basket rules" in w for w in before.json()["warnings"])
    _train(app)
    r = client.get("/v1/items/i0/bought-together", params={"n": 3, "explain": "true"}, headers=h)
    assert r.status_code == 200, r.text
    top = r.json()["items"][0]
    assert top["item_id"] == "i1" and top["explanation"] == "Often bought together with Item 0"
    assert "i0" not in [i["item_id"] for i in r.json()["items"]]
    # the source in the chain: a shopper who just put tea in the cart is offered cups
    event = {"event_id": "cart-1", "type": "add_to_cart", "user_id": "shopper",
             "item_id": "i2", "timestamp": NOW.isoformat()}
    assert client.post("/v1/events", json=event,
                       headers=tenant_a.headers("ingest")).status_code in (200, 201, 202)
    recs = client.post("/v1/recommendations", headers=h, json={
        "user_id": "shopper", "n": 3, "explain": True}).json()
    assert "bought_together" in recs["sources"]
    assert recs["items"][0]["item_id"] == "i3", recs["items"]
    assert "bought_together" in {r["type"] for r in recs["items"][0]["reasons"]}


def test_buy_again_on_request_despite_the_bought_exclusion(
    client: TestClient, app: FastAPI, tenant_a: TenantKeys
) -> None:
    _seed(client, tenant_a)
    _train(app)
    h = tenant_a.headers("serve")
    default = client.post("/v1/recommendations", headers=h,
                          json={"user_id": "regular", "n": 10}).json()
    assert "buy_again" not in default["sources"]
    assert "i5" not in [i["item_id"] for i in default["items"]], "bought items stay excluded"
    again = client.post("/v1/recommendations", headers=h, json={
        "user_id": "regular", "n": 3, "explain": True, "sources": ["buy_again"]}).json()
    assert [i["item_id"] for i in again["items"]][:1] == ["i5"], again
    assert again["items"][0]["explanation"] == "You may need it again"
    assert [i["item_id"] for i in again["items"]] == ["i5", "i0"]  # four orders before one
