"""No request can touch another tenant's data: tenant A seeds records, tenant B calls every
route with the same ids, and neither sees nor changes the other's data."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from personify.storage.registry import Stores

if TYPE_CHECKING:
    from conftest import TenantKeys

MakeEvent = Callable[..., dict[str, Any]]
SAME = "same-id"


@pytest.fixture(params=["memory", "sqlite-file", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """Every isolation test runs on each adapter, including real PostgreSQL."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path}/isolation.db"
    return "memory://"


@pytest.fixture
def seeded(client: TestClient, tenant_a: TenantKeys, make_event: MakeEvent) -> TenantKeys:
    """Tenant A owns user, item, events, consent and an alias, all under ids B will reuse."""
    admin = tenant_a.headers()
    client.put(f"/v1/users/{SAME}", json={"profile": {"name": "A person"}}, headers=admin)
    client.put(f"/v1/items/{SAME}", json={"title": "A item"}, headers=admin)
    client.post("/v1/events/batch", headers=admin, json=[
        make_event(event_id="shared-event", user_id=SAME, item_id=SAME),
        make_event(user_id=None, anonymous_id="anon-a"),
    ])
    client.post(f"/v1/users/{SAME}/aliases", json={"anonymous_id": "anon-a"}, headers=admin)
    client.post(f"/v1/users/{SAME}/consents", json={"purpose": "profiling", "state": "granted"},
                headers=admin)
    return tenant_a


def _a_is_intact(stores: Stores) -> None:
    user = stores.users.get("default", SAME)
    assert user is not None and user.profile.name == "A person"
    assert user.anonymous_ids == ["anon-a"]
    item = stores.catalog.get("default", SAME)
    assert item is not None and item.title == "A item"
    assert stores.events.count("default") == 2
    assert len(stores.consents.history("default", SAME)) == 1


def test_reads_never_cross_tenants(
    client: TestClient, seeded: TenantKeys, tenant_b: TenantKeys, stores: Stores
) -> None:
    b = tenant_b.headers()
    assert client.get(f"/v1/users/{SAME}", headers=b).status_code == 404
    assert client.get("/v1/users", headers=b).json()["users"] == []
    assert client.get("/v1/users", params={"query": "person"}, headers=b).json()["users"] == []
    assert client.get(f"/v1/users/{SAME}/events", headers=b).json()["events"] == []
    consents = client.get(f"/v1/users/{SAME}/consents", headers=b).json()
    assert consents["history"] == [] and consents["current"] == {}
    assert client.get(f"/v1/items/{SAME}", headers=b).status_code == 404
    assert client.get("/v1/items", headers=b).json()["items"] == []
    own_keys = {k["tenant"] for k in client.get("/v1/keys", headers=b).json()["keys"]}
    assert own_keys == {"globex"}
    _a_is_intact(stores)


def test_writes_with_the_same_ids_stay_in_the_callers_tenant(
    client: TestClient, seeded: TenantKeys, tenant_b: TenantKeys, stores: Stores,
    make_event: MakeEvent,
) -> None:
    b = tenant_b.headers()
    patched = client.patch(f"/v1/users/{SAME}", json={"restricted": True}, headers=b)
    assert patched.status_code == 404
    assert client.patch(f"/v1/items/{SAME}", json={"title": "B"}, headers=b).status_code == 404
    assert client.delete(f"/v1/items/{SAME}", headers=b).status_code == 404
    assert client.put(f"/v1/users/{SAME}", json={"profile": {"name": "B"}}, headers=b).is_success
    assert client.post("/v1/users:bulk", json=[{"user_id": "other"}], headers=b).is_success
    assert client.put(f"/v1/items/{SAME}", json={"title": "B"}, headers=b).is_success
    assert client.post("/v1/items:bulk", json=[{"item_id": "x"}], headers=b).is_success
    single = client.post("/v1/events", json=make_event(event_id="shared-event", user_id=SAME),
                         headers=b).json()
    assert single["status"] == "stored"  # A's identical event id is not a duplicate for B
    batch = client.post("/v1/events/batch", headers=b,
                        json=[make_event(event_id="shared-event"), make_event()]).json()
    assert (batch["stored"], batch["duplicates"]) == (1, 1)
    alias = client.post(f"/v1/users/{SAME}/aliases", json={"anonymous_id": "anon-a"}, headers=b)
    assert alias.status_code == 200  # A's link to the same anonymous id is invisible to B
    assert client.post(f"/v1/users/{SAME}/consents", headers=b,
                       json={"purpose": "profiling", "state": "denied"}).status_code == 201
    _a_is_intact(stores)
    assert stores.events.count("globex") == 2
    b_user = stores.users.get("globex", SAME)
    assert b_user is not None and b_user.profile.name == "B"


def test_delete_and_key_revocation_stay_in_the_callers_tenant(
    client: TestClient, seeded: TenantKeys, tenant_b: TenantKeys, stores: Stores,
    make_event: MakeEvent,
) -> None:
    b = tenant_b.headers()
    receipt = client.delete(f"/v1/users/{SAME}", headers=b).json()
    assert receipt["profile_deleted"] is False and receipt["events_deleted"] == 0
    _a_is_intact(stores)
    # B's tombstone does not block A
    again = client.post("/v1/events", json=make_event(user_id=SAME), headers=seeded.headers())
    assert again.status_code == 200
    a_keys = [k["key_id"] for k in client.get("/v1/keys", headers=seeded.headers()).json()["keys"]]
    for key_id in a_keys:
        assert client.delete(f"/v1/keys/{key_id}", headers=b).status_code == 404
    assert client.get("/v1/users", headers=seeded.headers()).status_code == 200


def test_segment_writes_land_in_the_write_keys_tenant(
    client: TestClient, seeded: TenantKeys, tenant_b: TenantKeys, stores: Stores
) -> None:
    basic = base64.b64encode(f"{tenant_b.ingest}:".encode()).decode()
    body = {"batch": [
        {"type": "identify", "userId": SAME, "traits": {"name": "Segment B"}, "messageId": "m1"},
        {"type": "track", "userId": SAME, "event": "Product Viewed", "messageId": "shared-event",
         "properties": {"product_id": SAME}},
    ]}
    answer = client.post("/segment/v1/batch", json=body,
                         headers={"Authorization": f"Basic {basic}"}).json()
    assert answer["stored"] == 1 and answer["rejected"] == []
    _a_is_intact(stores)
    b_user = stores.users.get("globex", SAME)
    assert b_user is not None and b_user.profile.name == "Segment B"
