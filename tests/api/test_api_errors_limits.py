"""Error shape and limits: body size by Content-Length and by streamed count, unknown routes,
validation errors naming the field path, gzip bombs; health, readiness, keys and OpenAPI."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from personify.api import create_app
from personify.settings import Settings
from personify.storage.registry import Stores

if TYPE_CHECKING:
    from conftest import TenantKeys

SMALL = 4096


@pytest.fixture
def small_client(stores: Stores, tenant_a: TenantKeys) -> Iterator[TestClient]:
    """An app whose request body limit is 4 KiB."""
    app = create_app(Settings(database_url="memory://", max_request_bytes=SMALL), stores=stores)
    with TestClient(app) as client:
        yield client


def test_declared_oversized_body_is_413_before_reading(
    small_client: TestClient, admin: dict[str, str]
) -> None:
    response = small_client.post("/v1/events/batch", content=b"[" + b" " * SMALL + b"]",
                                 headers={**admin, "Content-Type": "application/json"})
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "limit_exceeded"
    assert str(SMALL) in error["accepted"]


def test_streamed_oversized_body_is_413(small_client: TestClient, admin: dict[str, str]) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(10):
            yield b" " * 1000
        yield b"]"

    response = small_client.post("/v1/events/batch", content=chunks(),
                                 headers={**admin, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "limit_exceeded"


def test_streamed_oversized_body_on_a_schema_route_is_413(
    small_client: TestClient, admin: dict[str, str]
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"properties": {"a": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}}'

    response = small_client.put("/v1/users/u1", content=chunks(),
                                headers={**admin, "Content-Type": "application/json"})
    assert response.status_code == 413


def test_gzip_bomb_is_413(small_client: TestClient, admin: dict[str, str]) -> None:
    bomb = gzip.compress(b"[" + b" " * 1_000_000 + b"]")
    assert len(bomb) < SMALL
    response = small_client.post("/v1/events/batch", content=bomb, headers={
        **admin, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 413


def test_corrupt_gzip_is_malformed(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post("/v1/events/batch", content=b"\x1f\x8bnot gzip", headers={
        **admin, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_invalid_content_length_is_400(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post("/v1/events/batch", content=b"[]",
                           headers={**admin, "Content-Length": "many"})
    assert response.status_code == 400


def test_unknown_route_and_method_have_the_json_error_shape(client: TestClient) -> None:
    missing = client.get("/v1/nothing")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    wrong = client.delete("/health")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (405, "method_not_allowed")


def test_a_405_allows_every_method_of_the_path(client: TestClient, admin: dict[str, str]) -> None:
    # /v1/items/{item_id} is served by four routes; Starlette named only the first one's method
    response = client.options("/v1/items/i1", headers=admin)
    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert {"GET", "PUT", "PATCH", "DELETE"} <= allowed
    assert "POST" not in allowed


def test_every_framework_4xx_names_the_field(client: TestClient, admin: dict[str, str]) -> None:
    wrong_method = client.request("TRACE", "/v1/items/i1", headers=admin).json()["error"]
    assert (wrong_method["field"], wrong_method["code"]) == ("method", "method_not_allowed")
    assert "GET" in wrong_method["accepted"]
    assert client.get("/v1/nothing").json()["error"]["field"] == "path"
    # a missing body and a rule over the whole body name the body
    empty = client.patch("/v1/users/u1", headers=admin)
    assert (empty.status_code, empty.json()["error"]["field"]) == (422, "body")
    both = client.post("/v1/users/u1/not-interested", headers=admin,
                       json={"item_id": "i1", "category": "c"})
    assert (both.status_code, both.json()["error"]["field"]) == (422, "body")


def test_validation_error_lists_every_field(client: TestClient, admin: dict[str, str]) -> None:
    response = client.put("/v1/users/u1", headers=admin,
                          json={"profile": {"birth_year": "x", "experience_years": -1}})
    error = response.json()["error"]
    assert error["field"] == "profile.birth_year"
    fields = {e["field"] for e in error["details"]["errors"]}
    assert fields == {"profile.birth_year", "profile.experience_years"}


def test_health_and_ready_need_no_key(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["status"] == "ready"


def test_ready_reports_a_dead_database(tenant_a: TenantKeys, tmp_path: object) -> None:
    from personify.storage.registry import open_stores

    url = f"sqlite:///{tmp_path}/gone.db"
    stores = open_stores(url)
    stores.keys.create("default", "k", ["admin"])  # type: ignore[list-item]
    app = create_app(Settings(database_url=url), stores=stores)
    import sqlalchemy as sa

    assert stores.database is not None
    with stores.database.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE personify_api_keys"))
    with TestClient(app) as client:
        response = client.get("/ready")
    stores.close()
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_ready_says_degraded_on_the_in_process_fallback(
    stores: Stores, tenant_a: TenantKeys
) -> None:
    from personify.domain.errors import Unavailable
    from personify.storage.online import FallbackOnlineState, MemoryOnlineState

    class Down(MemoryOnlineState):
        def user_state(self, *args: object, **kwargs: object) -> Any:
            raise Unavailable("redis is down", field="redis_url", accepted="a reachable Redis")

    state = FallbackOnlineState(Down(), MemoryOnlineState())
    app = create_app(Settings(database_url="memory://"), stores=stores, online_state=state)
    with TestClient(app) as client:
        assert client.get("/ready").json()["status"] == "ready"
        state.user_state("default", "u1")  # the first failed call switches to the fallback
        body = client.get("/ready").json()
    assert body["status"] == "degraded" and "fallback" in body["checks"]["online_state"]
    unreachable = create_app(Settings(database_url="memory://", redis_url="redis://127.0.0.1:1/0"),
                             stores=stores)
    with TestClient(unreachable) as client:
        body = client.get("/ready").json()
    assert body["status"] == "degraded", body


def test_keys_are_created_listed_and_revoked_secret_shown_once(
    client: TestClient, admin: dict[str, str]
) -> None:
    created = client.post("/v1/keys", json={"name": "web tracker", "scopes": ["ingest"]},
                          headers=admin)
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("pfy_")
    listed = client.get("/v1/keys", headers=admin).text
    assert secret not in listed and "web tracker" in listed
    bad = client.post("/v1/keys", json={"name": "x", "scopes": ["root"]}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "scopes[0]"
    empty = client.post("/v1/keys", json={"name": "x", "scopes": []}, headers=admin)
    assert empty.status_code == 422


def test_consents_keep_history_and_current_state(
    client: TestClient, admin: dict[str, str]
) -> None:
    for state in ("granted", "withdrawn"):
        client.post("/v1/users/u1/consents", json={"purpose": "email_marketing", "state": state},
                    headers=admin)
    client.post("/v1/users/u1/consents", json={"purpose": "profiling", "state": "denied",
                                               "text_version": "v2 «политика»"}, headers=admin)
    body = client.get("/v1/users/u1/consents", headers=admin).json()
    assert len(body["history"]) == 3
    assert body["current"]["email_marketing"]["state"] == "withdrawn"
    assert body["current"]["profiling"]["text_version"] == "v2 «политика»"
    bad = client.post("/v1/users/u1/consents", json={"purpose": "x", "state": "maybe"},
                      headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "state"


def test_openapi_documents_the_routes_and_self_parsed_bodies(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in ("/v1/users/{user_id}", "/v1/events/batch", "/v1/items:bulk", "/v1/keys",
                 "/segment/v1/batch", "/health", "/ready"):
        assert path in schema["paths"], path
    batch = schema["paths"]["/v1/events/batch"]["post"]["requestBody"]
    assert "Event" in str(batch)
    assert "Event" in schema["components"]["schemas"]
    assert "Context" in schema["components"]["schemas"]
    assert client.get("/docs").status_code == 200
