"""The ``factors`` source through the API: trained with ALS factors, a click posted to
``/v1/events`` updates the user's vector in the online state and the next
``/v1/recommendations`` answer; erasure drops the vector; a model without factors serves on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.jobs.training import TrainingConfig, train_tenant
from personify.settings import Settings

if TYPE_CHECKING:
    from conftest import TenantKeys

NOW = datetime.now(UTC)
TENANT = "default"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, model_dir=str(tmp_path / "models"), demo=False)


def _seed(client: TestClient, keys: TenantKeys) -> None:
    """Two taste groups: even users view items 0..19, odd users 20..39."""
    for i in range(40):
        r = client.put(f"/v1/items/i{i}", json={"title": f"Item {i}"}, headers=keys.headers())
        assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = []
    for u in range(40):
        base = 0 if u % 2 == 0 else 20
        for j in range(8):
            events.append({
                "event_id": f"h{u}-{j}",
                "type": "view",
                "user_id": f"u{u}",
                "item_id": f"i{base + (u * 3 + j * 5) % 20}",
                "timestamp": (NOW - timedelta(days=3, minutes=u * 10 + j)).isoformat(),
            })
    r = client.post("/v1/events/batch", json={"events": events}, headers=keys.headers("ingest"))
    assert r.status_code == 200, r.text


def _train(app: FastAPI, factors: int | None) -> None:
    engine, stores = app.state.runtime.engine, app.state.runtime.stores
    config = TrainingConfig(learn_blend=False, train_ranker=False, factors=factors,
                            factor_params={"iterations": 8})
    train_tenant(stores.events, engine.models, TENANT, config)
    engine.bundles.refresh()
    engine.bundles.get(TENANT)


def _grant(client: TestClient, keys: TenantKeys, user: str) -> None:
    for purpose in ("personalization", "profiling"):
        r = client.post(f"/v1/users/{user}/consents", headers=keys.headers(),
                        json={"purpose": purpose, "state": "granted", "text_version": "v1"})
        assert r.status_code == 201, r.text


def _event(client: TestClient, keys: TenantKeys, user: str, item: str, kind: str, n: int) -> None:
    body = {"event_id": f"live-{user}-{n}", "type": kind, "user_id": user, "item_id": item,
            "timestamp": (NOW + timedelta(seconds=n)).isoformat()}
    r = client.post("/v1/events", json=body, headers=keys.headers("ingest"))
    assert r.status_code in (200, 201, 202), r.text


def _recs(client: TestClient, keys: TenantKeys, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/recommendations", json=body, headers=keys.headers("serve"))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_click_updates_the_vector_and_factors_serve_through_the_api(
    client: TestClient, app: FastAPI, tenant_a: TenantKeys
) -> None:
    pytest.importorskip("implicit")
    _seed(client, tenant_a)
    _train(app, factors=8)
    engine = app.state.runtime.engine
    bundle = engine.bundles.get(TENANT)
    assert bundle is not None and bundle.factors is not None
    version = bundle.factors.version
    _grant(client, tenant_a, "fan")
    _event(client, tenant_a, "fan", "i3", "view", 1)
    first = engine.state.get_user_vector(TENANT, version, "fan")
    assert first is not None and first.shape == (8 + 2,)  # vector + fingerprint
    _event(client, tenant_a, "fan", "i25", "purchase", 2)
    _event(client, tenant_a, "fan", "i27", "click", 3)
    second = engine.state.get_user_vector(TENANT, version, "fan")
    assert second is not None and not np.allclose(first, second)

    out = _recs(client, tenant_a, user_id="fan", n=10, explain=True,
                sources=["factors"], log_impression=False)
    assert out["sources"] == ["factors"] and out["personalized"] is True
    ids = [i["item_id"] for i in out["items"]]
    assert ids and not {"i3", "i25", "i27"} & set(ids)
    assert all(i["reasons"][0]["source"] == "factors" and i["explanation"] for i in out["items"])
    mixed = _recs(client, tenant_a, user_id="fan", n=10, log_impression=False)
    assert "factors" in mixed["sources"]

    # erasure drops the vector at once
    assert client.delete("/v1/users/fan", headers=tenant_a.headers()).status_code == 200
    assert engine.state.get_user_vector(TENANT, version, "fan") is None


def test_a_model_without_factors_serves_without_the_source(
    client: TestClient, app: FastAPI, tenant_a: TenantKeys
) -> None:
    _seed(client, tenant_a)
    _train(app, factors=None)
    _grant(client, tenant_a, "plain")
    _event(client, tenant_a, "plain", "i3", "view", 1)
    out = _recs(client, tenant_a, user_id="plain", n=5, log_impression=False)
    assert len(out["items"]) == 5 and "factors" not in out["sources"]
    assert "collaborative" in out["sources"]
