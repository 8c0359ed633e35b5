"""Ids containing ``/`` (and ``%``) addressed in URL paths as ``%2F`` (``%25``): users, their
sub-resources (export, events, consents) and items (with similar items of a trained model)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.api.path_ids import escaped_path, unescape
from personify.jobs.training import TrainingConfig, train_tenant
from personify.settings import Settings

if TYPE_CHECKING:
    from conftest import TenantKeys

NOW = datetime.now(UTC)


def enc(value: str) -> str:
    """An id as one path segment (what the Python client sends)."""
    return quote(value, safe="")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, model_dir=str(tmp_path / "models"), demo=False)


@pytest.mark.parametrize("user_id", ["team/alice", "a/b/c", "/lead", "x/export", "100%/off/%2F"])
def test_user_with_slash_get_patch_export_delete(
    client: TestClient, admin: dict[str, str], user_id: str
) -> None:
    path = f"/v1/users/{enc(user_id)}"
    put = client.put(path, headers=admin, json={"profile": {"name": "Alice"}})
    assert put.status_code == 200, put.text
    assert put.json()["user_id"] == user_id
    patched = client.patch(path, headers=admin, json={"profile": {"city": "Berlin"}})
    assert patched.status_code == 200, patched.text
    got = client.get(path, headers=admin)
    assert got.status_code == 200 and got.json()["user_id"] == user_id
    assert got.json()["profile"]["city"] == "Berlin"
    export = client.get(f"{path}/export", headers=admin)
    assert export.status_code == 200, export.text
    assert user_id in export.text and "Berlin" in export.text
    deleted = client.delete(path, headers=admin)
    assert deleted.status_code == 200, deleted.text
    assert client.get(path, headers=admin).status_code in {404, 410}


def test_an_id_ending_like_a_sub_resource_is_not_confused_with_it(
    client: TestClient, admin: dict[str, str]
) -> None:
    for user_id, city in (("x", "Paris"), ("x/export", "Rome")):
        assert client.put(f"/v1/users/{enc(user_id)}", headers=admin,
                          json={"profile": {"city": city}}).status_code == 200
    # "x%2Fexport" is the user "x/export"; "x/export" is the export of user "x"
    user = client.get("/v1/users/x%2Fexport", headers=admin).json()
    assert user["user_id"] == "x/export" and user["profile"]["city"] == "Rome"
    export = client.get("/v1/users/x/export", headers=admin)
    assert "Paris" in export.text and "Rome" not in export.text
    export = client.get("/v1/users/x%2fexport/export", headers=admin)  # lower-case hex too
    assert "Rome" in export.text and "Paris" not in export.text


def test_a_literal_slash_is_still_a_path_separator(
    client: TestClient, admin: dict[str, str]
) -> None:
    assert client.put("/v1/users/team%2Falice", headers=admin, json={}).status_code == 200
    assert client.get("/v1/users/team/alice", headers=admin).status_code == 404
    assert client.get("/v1/users/team%2Falice", headers=admin).status_code == 200
    # an id holding the text "%2F" is told apart from one holding "/"
    assert client.get("/v1/users/team%252Falice", headers=admin).status_code == 404
    assert client.put("/v1/users/team%252Falice", headers=admin, json={}).json()["user_id"] \
        == "team%2Falice"


def test_reads_are_audited_under_the_whole_id(client: TestClient, admin: dict[str, str]) -> None:
    # the users router's audit dependency reads the path parameter: it must see "crm/7"
    client.put("/v1/users/crm%2F7", headers=admin, json={})
    client.get("/v1/users/crm%2F7", headers=admin)
    client.get("/v1/users/crm", headers=admin)
    entries = client.get("/v1/privacy/audit", params={"user_id": "crm/7"}, headers=admin).json()
    assert [e["resource"] for e in entries["entries"]] == [
        "GET /v1/users/{user_id}", "PUT /v1/users/{user_id}"
    ]


def test_events_and_consents_of_a_user_with_slash(
    client: TestClient, admin: dict[str, str], tenant_a: TenantKeys, make_event: Any
) -> None:
    user_id = "crm/42"
    events = [make_event(user_id=user_id, item_id="shop/i1"), make_event(user_id="crm")]
    r = client.post("/v1/events/batch", json={"events": events},
                    headers=tenant_a.headers("ingest"))
    assert r.status_code == 200, r.text
    listed = client.get(f"/v1/users/{enc(user_id)}/events", headers=admin)
    assert listed.status_code == 200, listed.text
    assert [e["item_id"] for e in listed.json()["events"]] == ["shop/i1"]
    consent = client.post(f"/v1/users/{enc(user_id)}/consents", headers=admin,
                          json={"purpose": "personalization", "state": "granted"})
    assert consent.status_code == 201, consent.text
    assert consent.json()["user_id"] == user_id
    assert client.get("/v1/users/crm/consents", headers=admin).json() != \
        client.get(f"/v1/users/{enc(user_id)}/consents", headers=admin).json()


def test_item_with_slash_get_patch_delete_and_similar(
    client: TestClient, app: FastAPI, tenant_a: TenantKeys
) -> None:
    admin, serve = tenant_a.headers("admin"), tenant_a.headers("serve")
    for i in range(24):
        body = {"title": f"item {i}", "categories": ["a" if i < 12 else "b"]}
        r = client.put(f"/v1/items/{enc(f'shop/{i}')}", json=body, headers=admin)
        assert r.status_code == 200 and r.json()["item_id"] == f"shop/{i}"
    got = client.get("/v1/items/shop%2F3", headers=serve)
    assert got.status_code == 200 and got.json()["title"] == "item 3"
    assert client.patch("/v1/items/shop%2F3", headers=admin,
                        json={"title": "three"}).json()["title"] == "three"
    # two groups of users: 0..11 are viewed together, 12..23 together
    events = [
        {"event_id": f"e{u}-{j}", "type": "view", "user_id": f"u/{u}",
         "item_id": f"shop/{(0 if u % 2 else 12) + (u * 5 + j * 7) % 12}",
         "timestamp": (NOW - timedelta(days=2, minutes=u * 10 + j)).isoformat()}
        for u in range(30) for j in range(6)
    ]
    r = client.post("/v1/events/batch", json={"events": events},
                    headers=tenant_a.headers("ingest"))
    assert r.status_code == 200, r.text
    engine = app.state.runtime.engine
    train_tenant(app.state.runtime.stores.events, engine.models, "default",
                 TrainingConfig(learn_blend=False), catalog=app.state.runtime.stores.catalog,
                 users=app.state.runtime.stores.users)
    engine.bundles.refresh()
    similar = client.get("/v1/items/shop%2F3/similar", params={"n": 5}, headers=serve)
    assert similar.status_code == 200, similar.text
    ids = [i["item_id"] for i in similar.json()["items"]]
    assert ids and "shop/3" not in ids
    assert all(int(i.split("/")[1]) < 12 for i in ids), ids  # neighbours of shop/3's group
    assert client.delete("/v1/items/shop%2F3", headers=admin).status_code == 204
    assert client.get("/v1/items/shop%2F3", headers=serve).status_code == 404


def test_the_escaping_round_trips() -> None:
    for value in ["a/b", "100%", "%2F", "a%2Fb/c", "/", "Привет/мир 🙂", "x%25y"]:
        raw = f"/v1/users/{enc(value)}/export".encode()
        segment = escaped_path(raw).split("/")[3]
        assert unescape(segment) == value
    assert escaped_path(b"/v1/items/plain") == "/v1/items/plain"


def test_the_openapi_document_keeps_the_plain_templates(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/users/{user_id}" in paths and "/v1/items/{item_id}/similar" in paths
