"""Users and items over HTTP: upsert / patch / get / delete, bulk with per-record rejections,
listing and search, identity merge, erasure, Unicode and SQL-looking text."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from personify.storage.registry import Stores

if TYPE_CHECKING:
    from conftest import TenantKeys

MakeEvent = Callable[..., dict[str, Any]]
TEXTS = ["Привет, мир", "🙂🚀 emoji", "Robert'); DROP TABLE personify_users;--", "100% _match_"]


def test_user_lifecycle(client: TestClient, admin: dict[str, str]) -> None:
    put = client.put("/v1/users/alice", headers=admin, json={
        "profile": {"name": "Alice", "country": "DE", "time_zone": "Europe/Berlin",
                    "skills": ["python"]},
        "properties": {"plan": "pro", "seats": 3},
    })
    assert put.status_code == 200
    assert put.json()["created_at"] is not None
    patched = client.patch("/v1/users/alice", headers=admin,
                           json={"profile": {"city": "Berlin"}, "restricted": True}).json()
    assert patched["profile"]["city"] == "Berlin"
    assert patched["profile"]["name"] == "Alice"  # untouched fields stay
    assert patched["restricted"] is True
    got = client.get("/v1/users/alice", headers=admin).json()
    assert got == patched


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/v1/users/ghost", None),
        ("patch", "/v1/users/ghost", {"restricted": True}),
        ("get", "/v1/items/ghost", None),
        ("patch", "/v1/items/ghost", {"title": "x"}),
        ("delete", "/v1/items/ghost", None),
        ("delete", "/v1/keys/ghost", None),
    ],
)
def test_missing_records_are_404(
    client: TestClient, admin: dict[str, str], method: str, path: str, body: Any
) -> None:
    response = client.request(method, path, headers=admin, json=body)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"profile": {"time_zone": "Mars/Olympus"}}, "profile.time_zone"),
        # longer than a file name: zoneinfo raised OSError, which escaped as a server error
        ({"profile": {"time_zone": "Europe/" + "x" * 300}}, "profile.time_zone"),
        ({"profile": {"birth_year": "nineteen"}}, "profile.birth_year"),
        ({"profile": {"skills": "python"}}, "profile.skills"),
        ({"properties": {"nested": {"a": 1}}}, "properties.nested"),
        ({"user_id": "other"}, "user_id"),
        ({"anonymous_ids": [""]}, "anonymous_ids[0]"),
    ],
)
def test_bad_user_bodies_name_the_field(
    client: TestClient, admin: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = client.put("/v1/users/bob", json=body, headers=admin)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["field"].startswith(field)


def test_user_id_longer_than_the_limit_is_422(client: TestClient, admin: dict[str, str]) -> None:
    response = client.put(f"/v1/users/{'x' * 129}", json={}, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "user_id"


def test_bulk_users_store_the_good_and_report_the_bad(
    client: TestClient, admin: dict[str, str], stores: Stores
) -> None:
    records: list[Any] = [
        {"user_id": "a", "profile": {"country": "FR"}},
        {"user_id": "b", "profile": {"birth_year": 1800}},
        "not an object",
        {"user_id": "c", "unknown": 1},
        {"user_id": "a", "profile": {"country": "IT"}},
        {"profile": {}},
    ]
    response = client.post("/v1/users:bulk", json={"users": records}, headers=admin)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1 and body["ids"] == ["a"]
    assert {r["index"] for r in body["rejected"]} == {1, 2, 3, 5}
    stored = stores.users.get("default", "a")
    assert stored is not None and stored.profile.country == "IT"  # the later record wins


def test_user_search_and_paging(client: TestClient, admin: dict[str, str]) -> None:
    users = [{"user_id": f"user-{i:02d}", "profile": {"name": f"Name {i}"}} for i in range(30)]
    users.append({"user_id": "zz", "profile": {"name": "Зоя Петрова", "email": "zoya@example.org"}})
    assert client.post("/v1/users:bulk", json=users, headers=admin).json()["accepted"] == 31
    page = client.get("/v1/users", params={"limit": 10, "offset": 10}, headers=admin).json()
    assert len(page["users"]) == 10 and page["offset"] == 10
    found = client.get("/v1/users", params={"query": "зоя"}, headers=admin).json()["users"]
    assert [u["user_id"] for u in found] == ["zz"]
    assert client.get("/v1/users", params={"limit": 5000}, headers=admin).status_code == 422
    # an offset past a database integer (Schemathesis found a 500 on SQLite) names the field
    for route in ("/v1/users", "/v1/items"):
        r = client.get(route, params={"offset": 2**63}, headers=admin)
        assert r.status_code == 422 and r.json()["error"]["field"] == "offset", r.text
        assert client.get(route, params={"offset": 10**8}, headers=admin).status_code == 200


def test_alias_links_anonymous_events_and_refuses_a_taken_id(
    client: TestClient, admin: dict[str, str], make_event: MakeEvent
) -> None:
    client.post("/v1/events/batch", headers=admin, json=[
        make_event(user_id=None, anonymous_id="anon-1"),
        make_event(user_id=None, anonymous_id="anon-1", type="click"),
    ])
    linked = client.post("/v1/users/carol/aliases", json={"anonymous_id": "anon-1"}, headers=admin)
    assert linked.status_code == 200
    assert linked.json()["anonymous_ids"] == ["anon-1"]
    events = client.get("/v1/users/carol/events", headers=admin).json()["events"]
    assert len(events) == 2
    taken = client.post("/v1/users/dave/aliases", json={"anonymous_id": "anon-1"}, headers=admin)
    assert taken.status_code == 409
    assert taken.json()["error"]["field"] == "anonymous_id"


def test_delete_erases_and_blocks_replays(
    client: TestClient, admin: dict[str, str], stores: Stores, make_event: MakeEvent
) -> None:
    client.put("/v1/users/erin", json={"anonymous_ids": ["erin-phone"]}, headers=admin)
    client.post("/v1/events/batch", headers=admin, json=[
        make_event(user_id="erin"), make_event(user_id=None, anonymous_id="erin-phone"),
        make_event(user_id="frank"),
    ])
    client.post("/v1/users/erin/consents", headers=admin,
                json={"purpose": "email_marketing", "state": "granted"})
    receipt = client.delete("/v1/users/erin", headers=admin).json()
    assert receipt["profile_deleted"] is True
    assert (receipt["events_deleted"], receipt["consents_deleted"]) == (2, 1)
    assert client.get("/v1/users/erin", headers=admin).status_code == 404
    assert stores.events.count("default") == 1  # frank's event stays
    assert client.put("/v1/users/erin", json={}, headers=admin).status_code == 410
    replay = client.post("/v1/events", json=make_event(user_id="erin"), headers=admin)
    assert replay.status_code == 410
    assert replay.json()["error"]["code"] == "erased"
    bulk = client.post("/v1/users:bulk", json=[{"user_id": "erin"}], headers=admin).json()
    assert bulk["rejected"][0]["code"] == "erased"


@pytest.mark.parametrize("text", TEXTS)
def test_unicode_and_sql_text_in_every_user_and_item_field(
    client: TestClient, admin: dict[str, str], text: str
) -> None:
    profile = {name: text for name in ("name", "email", "country", "city", "language", "gender",
                                       "profession", "industry", "bio", "birthday")}
    profile.update(skills=[text], interests=[text], goals=[text])
    user = client.put(f"/v1/users/{text}", headers=admin,
                      json={"profile": profile, "properties": {text[:20]: text},
                            "anonymous_ids": [f"{text}-anon"]})
    assert user.status_code == 200, user.text
    assert client.get(f"/v1/users/{text}", headers=admin).json()["profile"] == {
        **user.json()["profile"], **profile}
    item = {"type": "custom_type", "title": text, "description": text, "categories": [text],
            "tags": [text], "currency": text[:3], "properties": {text[:20]: [text]}}
    put = client.put(f"/v1/items/{text}", json=item, headers=admin)
    assert put.status_code == 200, put.text
    got = client.get(f"/v1/items/{text}", headers=admin).json()
    assert {k: got[k] for k in item} == item
    listed = client.get("/v1/items", params={"query": text[:6]}, headers=admin).json()["items"]
    assert [i["item_id"] for i in listed] == [text]


def test_item_lifecycle_and_listing_by_type(
    client: TestClient, tenant_a: TenantKeys, stores: Stores
) -> None:
    admin, serve = tenant_a.headers("admin"), tenant_a.headers("serve")
    items = [{"item_id": f"p{i}", "type": "product", "title": f"Shoe {i}", "price": 10 + i}
             for i in range(5)]
    items += [{"item_id": "a1", "type": "content", "title": "Guide"},
              {"item_id": "bad", "price": -3}, {"item_id": "bad2", "type": "no spaces"}]
    bulk = client.post("/v1/items:bulk", json={"items": items}, headers=admin).json()
    assert bulk["accepted"] == 6
    assert [(r["index"], r["field"]) for r in bulk["rejected"]] == [(6, "price"), (7, "type")]
    products = client.get("/v1/items", params={"type": "product"}, headers=serve).json()["items"]
    assert sorted(i["item_id"] for i in products) == [f"p{i}" for i in range(5)]
    patched = client.patch("/v1/items/p1", json={"hidden": True, "tags": ["sale"]},
                           headers=admin).json()
    assert patched["hidden"] is True and patched["title"] == "Shoe 1"
    assert client.delete("/v1/items/p1", headers=admin).status_code == 204
    assert stores.catalog.get("default", "p1") is None
    assert client.put("/v1/items/x", json={"title": "x"}, headers=serve).status_code == 403


def test_erasure_seen_by_a_fresh_process_rejects_the_batch_rows(
    client: TestClient, admin: dict[str, str], stores: Stores, make_event: MakeEvent
) -> None:
    """Regression: the batch-wide erasure lookup (not the in-process cache) finds tombstones."""
    from personify.api import create_app
    from personify.settings import Settings

    client.delete("/v1/users/gone", headers=admin)
    fresh = create_app(Settings(database_url="memory://"), stores=stores)
    with TestClient(fresh) as other:
        body = other.post("/v1/events/batch", headers=admin, json=[
            make_event(user_id="kept"), make_event(user_id="gone"), make_event(user_id="kept")
        ]).json()
    assert body["stored"] == 2
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(1, "erased")]
