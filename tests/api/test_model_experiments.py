"""Model-vs-model experiments through the API: a variant payload ``{"model": ...}`` serves that
stored bundle version to the variant's units, the response names the version, the exposure is
logged with the variant, and unknown versions are rejected at creation and at start."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.domain.events import Event
from personify.jobs.training import TrainingConfig, train_bundle
from personify.serving.model_registry import BundleRegistry
from personify.settings import Settings
from personify.storage.model_files import FileModelStore, ModelManifest, new_version

if TYPE_CHECKING:
    from conftest import TenantKeys

T = "default"
NOW = datetime.now(UTC)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, model_dir=str(tmp_path / "models"), demo=False)


def _pairs_events(partners: Sequence[str], tag: str) -> list[Event]:
    """40 users who each viewed i0 together with ``partners`` (and a filler item)."""
    out = []
    for u in range(40):
        for j, item in enumerate(["i0", *partners, f"i{10 + u % 5}"]):
            out.append(
                Event(
                    event_id=f"{tag}-{u}-{j}",
                    type="view",
                    user_id=f"{tag}{u}",
                    item_id=item,
                    timestamp=NOW - timedelta(days=2, minutes=u * 10 + j),
                )
            )
    return out


def _store_bundle(models: FileModelStore, events: list[Event], model: str) -> str:
    config = TrainingConfig(model=model, params={}, learn_blend=False, train_ranker=False)
    if model == "rp3beta":
        config.params = {"k": 50, "alpha": 0.8, "beta": 0.3}
    version = new_version()
    bundle, manifest = train_bundle(events, config, version=version)
    models.save(T, bundle, ModelManifest(**{**vars(manifest), "tenant": T}))
    return version


@pytest.fixture
def versions(app: FastAPI) -> tuple[str, str]:
    """Two stored bundles that disagree about i0: A pairs it with i1-i3, B (live) with i5-i7."""
    engine = app.state.runtime.engine
    a = _store_bundle(engine.models, _pairs_events(["i1", "i2", "i3"], "a"), "itemknn")
    b = _store_bundle(engine.models, _pairs_events(["i5", "i6", "i7"], "b"), "rp3beta")
    engine.models.promote(T, b)
    engine.bundles.refresh()
    assert engine.bundles.version(T) == b
    return a, b


def _catalog(client: TestClient, keys: TenantKeys) -> None:
    for i in range(20):
        got = client.put(f"/v1/items/i{i}", json={"title": f"item {i}"}, headers=keys.headers())
        assert got.status_code == 200, got.text


def _definition(a: str, b: str) -> dict[str, Any]:
    return {
        "name": "model-a-vs-b",
        "variants": [
            {"name": "A", "payload": {"model": a}},
            {"name": "B", "payload": {"model": b}},
        ],
        "layer": "home",
        "primary_metric": {"name": "ctr", "kind": "ratio"},
        "sequential": True,
    }


def _recommend(client: TestClient, keys: TenantKeys, user: str) -> dict[str, Any]:
    got = client.post(
        "/v1/recommendations",
        json={"user_id": user, "n": 3, "sources": ["collaborative"]},
        headers=keys.headers("serve"),
    )
    assert got.status_code == 200, got.text
    return dict(got.json())


def _consent(client: TestClient, keys: TenantKeys, user: str) -> None:
    for purpose in ("personalization", "profiling"):
        got = client.post(
            f"/v1/users/{user}/consents",
            headers=keys.headers("admin"),
            json={"purpose": purpose, "state": "granted", "text_version": "v1"},
        )
        assert got.status_code == 201, got.text


def _viewed_i0(client: TestClient, keys: TenantKeys, user: str) -> None:
    view = {
        "event_id": f"view-{user}",
        "type": "view",
        "user_id": user,
        "item_id": "i0",
        "timestamp": NOW.isoformat(),
    }
    assert client.post("/v1/events", json=view, headers=keys.headers("ingest")).status_code == 200


def test_variants_are_served_by_their_model_versions(
    app: FastAPI, client: TestClient, tenant_a: TenantKeys, versions: tuple[str, str]
) -> None:
    a, b = versions
    _catalog(client, tenant_a)
    created = client.post("/v1/experiments", json=_definition(a, b), headers=tenant_a.headers())
    assert created.status_code == 201, created.text
    started = client.post("/v1/experiments/model-a-vs-b/start", headers=tenant_a.headers())
    assert started.status_code == 200, started.text
    by_variant: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    for n in range(24):
        user = f"v{n}"
        _consent(client, tenant_a, user)
        _viewed_i0(client, tenant_a, user)
        assigned = client.get(
            "/v1/assignments", params={"user_id": user}, headers=tenant_a.headers("serve")
        ).json()["assignments"]
        (variant,) = [x["variant"] for x in assigned if x["experiment"] == "model-a-vs-b"]
        body = _recommend(client, tenant_a, user)
        by_variant[variant].append({**body, "user": user})
    assert by_variant["A"] and by_variant["B"]
    for body in by_variant["A"]:
        assert body["model_version"] == a
        assert {i["item_id"] for i in body["items"]} == {"i1", "i2", "i3"}
    for body in by_variant["B"]:
        assert body["model_version"] == b
        assert {i["item_id"] for i in body["items"]} == {"i5", "i6", "i7"}
    # each exposure carries the variant and the id of the recommendation that variant served
    runtime = app.state.runtime.experiments
    exposures = {x.unit: x for x in runtime.exposures.exposures(T, "model-a-vs-b")}
    for variant, bodies in by_variant.items():
        for body in bodies:
            x = exposures[f"user:{body['user']}"]
            assert x.variant == variant and x.recommendation_id == body["recommendation_id"]
    one = client.get("/v1/experiments/model-a-vs-b", headers=tenant_a.headers()).json()
    assert one["exposed_units"] == {v: len(b_) for v, b_ in by_variant.items()}
    # the pinned version was loaded once, not per request; nobody outside gets it
    assert app.state.runtime.engine.bundles.pinned_loads == 1
    client.post("/v1/experiments/model-a-vs-b/stop", headers=tenant_a.headers())
    assert _recommend(client, tenant_a, "v0")["model_version"] == b


def test_a_model_name_is_pinned_to_its_newest_version_at_start(
    client: TestClient, tenant_a: TenantKeys, versions: tuple[str, str]
) -> None:
    a, b = versions
    body = _definition("itemknn", b)
    created = client.post("/v1/experiments", json=body, headers=tenant_a.headers())
    assert created.status_code == 201, created.text
    assert created.json()["variants"][0]["payload"] == {"model": "itemknn"}
    started = client.post("/v1/experiments/model-a-vs-b/start", headers=tenant_a.headers())
    assert started.json()["variants"][0]["payload"] == {"model": a, "model_requested": "itemknn"}


def test_unknown_model_versions_are_rejected_naming_the_field(
    app: FastAPI, client: TestClient, tenant_a: TenantKeys, versions: tuple[str, str]
) -> None:
    a, b = versions
    admin = tenant_a.headers()
    bad = client.post("/v1/experiments", json=_definition(a, "no-such-model"), headers=admin)
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["field"] == "variants.1.payload.model"
    assert "no-such-model" in error["message"] and b in error["accepted"]
    wrong_type = _definition(a, b)
    wrong_type["variants"][1]["payload"]["model"] = 3
    got = client.post("/v1/experiments", json=wrong_type, headers=admin)
    assert got.status_code == 422 and got.json()["error"]["field"] == "variants.1.payload.model"
    # a version deleted between creation and start is caught at start
    assert client.post("/v1/experiments", json=_definition(a, b), headers=admin).status_code == 201
    shutil.rmtree(Path(app.state.runtime.engine.models.root) / T / a)
    start = client.post("/v1/experiments/model-a-vs-b/start", headers=admin)
    assert start.status_code == 422 and start.json()["error"]["field"] == "variants.0.payload.model"
    listed = client.get("/v1/experiments/model-a-vs-b", headers=admin).json()
    assert listed["experiment"]["status"] == "draft"


def test_pinned_bundles_are_a_bounded_lru(tmp_path: Path) -> None:
    models = FileModelStore(tmp_path)
    stored = [
        _store_bundle(models, _pairs_events([f"i{k}"], f"t{k}"), "itemknn") for k in range(1, 5)
    ]
    registry = BundleRegistry(models, max_pinned=2)
    first = registry.pinned(T, stored[0])
    assert first is not None and first.version == stored[0]
    assert registry.pinned(T, stored[0]) is first and registry.pinned_loads == 1
    registry.pinned(T, stored[1])
    registry.pinned(T, stored[0])  # most recently used: stays
    registry.pinned(T, stored[2])  # evicts stored[1]
    assert registry.pinned_loads == 3
    assert registry.pinned(T, stored[0]) is first and registry.pinned_loads == 3
    registry.pinned(T, stored[1])
    assert registry.pinned_loads == 4
    assert registry.pinned(T, "missing") is None
    registry.preload(T, [stored[3]]).join(timeout=30)
    assert registry.pinned_loads == 5
