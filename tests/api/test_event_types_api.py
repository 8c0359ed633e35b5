"""``/v1/event-types``: a tenant declares its own event types (meaning, training weight,
whether they need an item) without a restart; events of a declared type are accepted from the
next request, other tenants still refuse them, and bad declarations name the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi.testclient import TestClient

from personify.domain.consents import ConsentRecord
from personify.domain.events import EventTypeDefinition
from personify.storage.registry import Stores
from personify.storage.sql.event_types import SqlEventTypes

if TYPE_CHECKING:
    from conftest import TenantKeys


def _event(n: int, type_: str, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"e{n}-{type_}", "type": type_, "user_id": "ana",
            "timestamp": datetime.now(UTC).isoformat(), **extra}


def _send(client: TestClient, keys: TenantKeys, *events: dict[str, Any]) -> Any:
    r = client.post("/v1/events/batch", json={"events": list(events)},
                    headers=keys.headers("ingest"))
    assert r.status_code in (200, 207), r.text
    return r.json()


def test_a_declared_type_is_accepted_at_once_and_only_for_its_tenant(
    client: TestClient, tenant_a: TenantKeys, tenant_b: TenantKeys
) -> None:
    before = _send(client, tenant_a, _event(1, "wishlist", item_id="i1"))
    assert before["stored"] == 0 and before["rejected"][0]["field"] == "type"
    assert "PUT /v1/event-types" in before["rejected"][0]["accepted"]

    body = {"description": "put on the wish list", "weight": 3, "needs_item": True}
    first = client.put("/v1/event-types/wishlist", json=body, headers=tenant_a.headers("admin"))
    assert first.status_code == 201, first.text
    again = client.put("/v1/event-types/wishlist", json=body, headers=tenant_a.headers("admin"))
    assert again.status_code == 200 and again.json() == first.json()

    after = _send(client, tenant_a, _event(2, "wishlist", item_id="i1"), _event(3, "wishlist"))
    assert after["stored"] == 1
    [missing_item] = after["rejected"]
    assert missing_item["field"] == "item_id" and missing_item["index"] == 1

    other = _send(client, tenant_b, _event(4, "wishlist", item_id="i1"))
    assert other["stored"] == 0 and other["rejected"][0]["field"] == "type"

    listed = client.get("/v1/event-types", headers=tenant_a.headers("ingest")).json()
    by_name = {t["name"]: t for t in listed["event_types"]}
    assert by_name["wishlist"] == {"name": "wishlist", "builtin": False, "weight": 3.0,
                                   "description": "put on the wish list", "needs_item": True}
    assert by_name["purchase"]["builtin"] and by_name["purchase"]["weight"] == 8.0
    assert by_name["signup"]["builtin"] is False  # the settings' custom types are listed too
    theirs = client.get("/v1/event-types", params={"builtin": "false"},
                        headers=tenant_b.headers("ingest")).json()
    assert "wishlist" not in {t["name"] for t in theirs["event_types"]}
    assert client.get("/v1/event-types/wishlist",
                      headers=tenant_b.headers("ingest")).status_code == 404

    assert client.delete("/v1/event-types/wishlist",
                         headers=tenant_a.headers("admin")).status_code == 200
    gone = _send(client, tenant_a, _event(5, "wishlist", item_id="i1"))
    assert gone["rejected"][0]["field"] == "type"
    stored = client.get("/v1/users/ana/events", headers=tenant_a.headers("admin"))
    assert stored.status_code == 200
    assert "e2-wishlist" in stored.text, "events already stored keep their type"


def test_bad_declarations_name_the_field(client: TestClient, tenant_a: TenantKeys) -> None:
    h = tenant_a.headers("admin")
    cases = [
        ("purchase", {"weight": 1}, "name"),
        ("bad name!", {"weight": 1}, "name"),
        ("wishlist", {"weight": "a lot"}, "weight"),
        ("wishlist", {"weight": 1000}, "weight"),
        ("wishlist", {"needs_item": "maybe"}, "needs_item"),
        ("wishlist", {"colour": "red"}, "colour"),
    ]
    for name, body, field in cases:
        r = client.put(f"/v1/event-types/{name}", json=body, headers=h)
        assert r.status_code == 422, (name, body, r.text)
        assert field in r.text, (field, r.text)
    nan = client.put("/v1/event-types/wishlist", content=b'{"weight": NaN}',
                     headers={**h, "Content-Type": "application/json"})
    assert nan.status_code in (400, 422), nan.text  # NaN is not JSON
    assert client.put("/v1/event-types/wishlist", json={"weight": 1},
                      headers=tenant_a.headers("ingest")).status_code == 403
    missing = client.delete("/v1/event-types/never", headers=h)
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "name"


def test_a_declaration_reaches_another_process_within_the_cache_time(stores: Stores) -> None:
    assert stores.database is not None
    now = [0.0]
    theirs = SqlEventTypes(stores.database, ttl=5.0, monotonic=lambda: now[0])
    assert "wishlist" not in theirs.declared("default")
    ours = SqlEventTypes(stores.database)
    assert ours.put("default", "wishlist", EventTypeDefinition(weight=2.5))
    assert "wishlist" not in theirs.declared("default"), "cached for ttl seconds"
    now[0] = 5.1
    assert theirs.declared("default")["wishlist"].weight == 2.5
    assert ours.weights("default") == {"wishlist": 2.5}


def test_segment_track_names_reach_a_declared_type(
    client: TestClient, tenant_a: TenantKeys, tenant_b: TenantKeys
) -> None:
    assert client.put("/v1/event-types/wish_listed", json={"weight": 2},
                      headers=tenant_a.headers("admin")).status_code == 201
    track = {"type": "track", "event": "Wish Listed", "userId": "ana", "messageId": "m1",
             "properties": {"product_id": "i1"}, "timestamp": datetime.now(UTC).isoformat()}
    ours = client.post("/segment/v1/track", json=track, headers=tenant_a.headers("ingest"))
    assert ours.json()["stored"] == 1, ours.text
    theirs = client.post("/segment/v1/track", json=track, headers=tenant_b.headers("ingest"))
    assert theirs.json()["stored"] == 0 and theirs.json()["rejected"][0]["field"] == "event"


def test_declared_weights_count_in_the_live_popularity_of_their_tenant(
    client: TestClient, tenant_a: TenantKeys, tenant_b: TenantKeys, stores: Stores
) -> None:
    """One ``wishlist`` declared at weight 6 outweighs five views in the live popularity (the
    untrained chain's ``popular`` / ``trending``), as it does in training; a type declared at
    weight 0 is kept but not counted; another tenant's same-named type counts its own weight."""
    admin_a, admin_b = tenant_a.headers("admin"), tenant_b.headers("admin")
    assert client.put("/v1/event-types/wishlist", json={"weight": 6},
                      headers=admin_a).status_code == 201
    assert client.put("/v1/event-types/peek", json={"weight": 0},
                      headers=admin_a).status_code == 201
    for name, body in (("wishlist", {"weight": 1}), ("peek", {"description": "no weight"})):
        assert client.put(f"/v1/event-types/{name}", json=body,
                          headers=admin_b).status_code == 201
    people = ["w", *(f"v{k}" for k in range(5)), *(f"p{k}" for k in range(9))]
    for keys in (tenant_a, tenant_b):
        for person in people:  # live state is kept for people who may be profiled (opt-in)
            for purpose in ("personalization", "profiling"):
                stores.consents.append(keys.tenant, ConsentRecord(
                    user_id=person, purpose=purpose, state="granted"))
        views = [_event(10 + k, "view", item_id="viewed", user_id=f"v{k}") for k in range(5)]
        wish = _event(20, "wishlist", item_id="wished", user_id="w")
        peeks = [_event(30 + k, "peek", item_id="peeked", user_id=f"p{k}") for k in range(9)]
        assert _send(client, keys, *views, wish, *peeks)["stored"] == 15
    state = client.app.state.runtime.engine.state  # type: ignore[attr-defined]
    a = dict(state.trending(tenant_a.tenant, 10))
    assert a["wished"] > a["viewed"] and "peeked" not in a, a
    assert a["wished"] / a["viewed"] > 1.1  # 6 against 5 (decayed alike)
    b = dict(state.trending(tenant_b.tenant, 10))
    assert b["viewed"] > b["wished"] and "peeked" not in b, b  # weight 1: one view's worth
