"""Authentication and scopes: 401 for missing / unknown / revoked keys, 403 for a wrong scope,
bootstrap and demo keys, and the refusal to start with no key at all."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from personify.api import create_app
from personify.domain.errors import ConfigurationError
from personify.settings import DEMO_ADMIN_KEY, Settings
from personify.storage.registry import Stores, open_stores

if TYPE_CHECKING:
    from conftest import TenantKeys


def _error(response: object) -> dict[str, str]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer pfy_nokey_abcdef"},
        {"X-API-Key": "not-a-key"},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        {"Authorization": "Bearer "},
    ],
)
def test_missing_or_unknown_key_is_401_json(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/v1/users", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert _error(response)["code"] == "unauthorized"


def test_bearer_and_x_api_key_both_work(client: TestClient, tenant_a: TenantKeys) -> None:
    assert client.get("/v1/users", headers={"Authorization": f"Bearer {tenant_a.admin}"}).is_success
    assert client.get("/v1/users", headers={"X-API-Key": tenant_a.admin}).is_success


def test_revoked_key_is_401(client: TestClient, stores: Stores, tenant_a: TenantKeys) -> None:
    created = client.post("/v1/keys", json={"name": "temp", "scopes": ["ingest"]},
                          headers=tenant_a.headers())
    assert created.status_code == 201
    secret = created.json()["secret"]
    key_id = created.json()["key"]["key_id"]
    ok = client.post("/v1/events/batch", json=[], headers={"X-API-Key": secret})
    assert ok.status_code == 200
    assert client.delete(f"/v1/keys/{key_id}", headers=tenant_a.headers()).status_code == 204
    response = client.post("/v1/events/batch", json=[], headers={"X-API-Key": secret})
    assert response.status_code == 401
    assert _error(response)["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("scope", "method", "path", "allowed"),
    [
        ("ingest", "post", "/v1/events/batch", True),
        ("ingest", "get", "/v1/users", False),
        ("ingest", "get", "/v1/items", False),
        ("ingest", "get", "/v1/keys", False),
        ("serve", "get", "/v1/items", True),
        ("serve", "post", "/v1/events/batch", False),
        ("serve", "get", "/v1/users/u1/events", False),
        ("admin", "post", "/v1/events/batch", True),
        ("admin", "get", "/v1/items", True),
        ("admin", "get", "/v1/keys", True),
    ],
)
def test_scopes(
    client: TestClient, tenant_a: TenantKeys, scope: str, method: str, path: str, allowed: bool
) -> None:
    kwargs = {"json": []} if method == "post" else {}
    response = client.request(method, path, headers=tenant_a.headers(scope), **kwargs)
    if allowed:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 403
        error = _error(response)
        assert error["code"] == "forbidden"
        assert "admin" in error["accepted"]


def test_basic_auth_is_only_for_the_segment_endpoint(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    basic = base64.b64encode(f"{tenant_a.ingest}:".encode()).decode()
    headers = {"Authorization": f"Basic {basic}"}
    assert client.post("/v1/events/batch", json=[], headers=headers).status_code == 401
    assert client.post("/segment/v1/batch", json={"batch": []}, headers=headers).status_code == 200


def test_bootstrap_admin_key_acts_for_the_default_tenant() -> None:
    secret = "x" * 30
    stores = open_stores("memory://")
    try:
        app = create_app(Settings(database_url="memory://", admin_key=secret), stores=stores)
        with TestClient(app) as client:
            put = client.put("/v1/users/u1", json={}, headers={"X-API-Key": secret})
            assert put.status_code == 200
        assert stores.users.get("default", "u1") is not None
    finally:
        stores.close()


def test_demo_mode_accepts_the_demo_key_and_nothing_else() -> None:
    stores = open_stores("memory://")
    try:
        app = create_app(Settings(database_url="memory://", demo=True), stores=stores)
        with TestClient(app) as client:
            demo = {"X-API-Key": DEMO_ADMIN_KEY}
            assert client.get("/v1/keys", headers=demo).status_code == 200
            assert client.get("/v1/keys", headers={"X-API-Key": "guess"}).status_code == 401
    finally:
        stores.close()


def test_demo_key_is_refused_outside_demo_mode(client: TestClient) -> None:
    assert client.get("/v1/keys", headers={"X-API-Key": DEMO_ADMIN_KEY}).status_code == 401


def test_startup_refuses_without_any_key() -> None:
    stores = open_stores("memory://")
    try:
        with pytest.raises(ConfigurationError) as caught:
            create_app(Settings(database_url="memory://", demo=False), stores=stores)
        assert "PERSONIFY_ADMIN_KEY" in caught.value.message
    finally:
        stores.close()


def test_startup_refuses_when_every_key_is_revoked() -> None:
    stores = open_stores("memory://")
    try:
        key, _secret = stores.keys.create("default", "old", ["admin"])  # type: ignore[list-item]
        stores.keys.revoke(key.key_id)
        with pytest.raises(ConfigurationError):
            create_app(Settings(database_url="memory://"), stores=stores)
    finally:
        stores.close()


def test_startup_opens_its_own_stores_when_a_key_exists(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/keys.db"
    with open_stores(url) as stores:
        stores.keys.create("default", "admin", ["admin"])  # type: ignore[list-item]
    app = create_app(Settings(database_url=url))
    with TestClient(app) as client:
        assert client.get("/ready").json()["status"] == "ready"


def test_verified_keys_are_trusted_briefly_and_revocation_here_is_immediate() -> None:
    from personify.domain.errors import Unauthorized
    from personify.domain.keys import Scope
    from personify.runtime.auth import Authenticator, ForgettingKeyStore
    from personify.storage.registry import open_stores

    stores = open_stores("memory://")
    clock = [100.0]
    auth = Authenticator(stores.keys, default_tenant="default", cache_seconds=2.0,
                         clock=lambda: clock[0])
    keys = ForgettingKeyStore(stores.keys, auth)
    first, secret1 = keys.create("default", "a", [Scope.SERVE])
    second, secret2 = keys.create("default", "b", [Scope.SERVE])
    assert auth.authenticate(secret1).key_id == first.key_id
    assert auth.authenticate(secret2).key_id == second.key_id
    # revoked elsewhere (another worker, the CLI): trusted until the cache time runs out
    stores.keys.revoke(second.key_id)
    assert auth.authenticate(secret2).key_id == second.key_id
    clock[0] += 2.5
    with pytest.raises(Unauthorized):
        auth.authenticate(secret2)
    # revoked through this process: refused on the very next request
    assert keys.revoke(first.key_id)
    with pytest.raises(Unauthorized):
        auth.authenticate(secret1)
    stores.close()
