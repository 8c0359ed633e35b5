"""The Segment-compatible endpoint: message mapping (track names, orders, identify traits,
alias, group, page, screen), per-message rejections, idempotency by messageId, auth."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from personify.domain.events import BUILTIN_EVENT_TYPES
from personify.runtime.segment.mapping import SegmentMapper, profile_from_traits
from personify.storage.registry import Stores

if TYPE_CHECKING:
    from conftest import TenantKeys

NOW = datetime.now(UTC).isoformat()


def _basic(secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{secret}:".encode()).decode()}


def _mapper(**track_map: str) -> SegmentMapper:
    return SegmentMapper(track_map, BUILTIN_EVENT_TYPES | {"signed_up"})


def test_track_names_map_to_event_types() -> None:
    messages = [
        {"type": "track", "event": name, "userId": "u", "messageId": f"m{i}", "timestamp": NOW,
         "properties": {"product_id": "sku-1", "price": "9.5", "quantity": 2}}
        for i, name in enumerate(["Product Viewed", "Product Clicked", "Product Added",
                                  "Product Removed", "Products Searched", "Signed Up",
                                  "purchase", "Level Up"])
    ]
    mapped = _mapper().map_batch(messages)
    assert [e["type"] for e in mapped.events] == [
        "view", "click", "add_to_cart", "remove_from_cart", "search", "signed_up", "purchase"]
    assert mapped.events[0]["item_id"] == "sku-1" and mapped.events[0]["price"] == 9.5
    assert [(r.index, r.field) for r in mapped.rejected] == [(7, "event")]


def test_configured_map_overrides_the_defaults() -> None:
    mapped = _mapper(**{"Product Viewed": "click", "Level Up": "signed_up"}).map_batch([
        {"type": "track", "event": "Product Viewed", "userId": "u", "messageId": "a",
         "properties": {"sku": "s"}},
        {"type": "track", "event": "Level Up", "userId": "u", "messageId": "b"},
    ])
    assert [e["type"] for e in mapped.events] == ["click", "signed_up"]
    assert mapped.events[0]["item_id"] == "s"


def test_order_completed_becomes_one_purchase_per_product_line() -> None:
    order = {"type": "track", "event": "Order Completed", "userId": "u", "messageId": "order-1",
             "properties": {"order_id": "o-7", "currency": "EUR", "total": 30, "products": [
                 {"product_id": "a", "price": 10, "quantity": 1},
                 {"sku": "b", "price": 10, "quantity": 2},
             ]}}
    mapped = _mapper().map_batch([order])
    assert [(e["event_id"], e["item_id"], e["quantity"]) for e in mapped.events] == [
        ("order-1:0", "a", 1.0), ("order-1:1", "b", 2.0)]
    assert {e["order_id"] for e in mapped.events} == {"o-7"}
    assert {e["currency"] for e in mapped.events} == {"EUR"}
    assert mapped.events[0]["properties"] == {"total": 30}
    assert mapped.origins == [0, 0]
    empty = _mapper().map_batch([{**order, "properties": {"products": []}}])
    assert empty.events == [] and empty.rejected[0].field == "properties.products"


def test_context_maps_device_page_locale_location_but_never_the_ip() -> None:
    message = {"type": "page", "name": "Home", "anonymousId": "a1", "messageId": "p1",
               "channel": "browser", "properties": {"url": "https://shop.example/"},
               "context": {"ip": "203.0.113.9", "locale": "de-DE", "timezone": "Europe/Berlin",
                           "device": {"type": "mobile"}, "page": {"path": "/"},
                           "location": {"country": "Germany", "city": "Köln", "latitude": 50.9},
                           "campaign": {"source": "newsletter"}}}
    [event] = _mapper().map_batch([message]).events
    assert event["type"] == "page" and event["anonymous_id"] == "a1"
    context = event["context"]
    assert context == {"device": "mobile", "channel": "web", "page": "/", "locale": "de-DE",
                       "location": {"country": "Germany", "city": "Köln", "latitude": 50.9},
                       "extra": {"timezone": "Europe/Berlin", "utm_source": "newsletter"}}
    assert "203.0.113.9" not in str(event)
    assert event["properties"]["name"] == "Home"


def test_identify_traits_become_profile_fields_and_properties() -> None:
    profile, rest = profile_from_traits({
        "firstName": "Анна", "lastName": "Смирнова", "email": "anna@example.org",
        "address": {"country": "RU", "city": "Казань"}, "birthday": "1990-05-17T00:00:00Z",
        "title": "Engineer", "company": {"name": "ACME", "industry": "Retail"}, "plan": "pro",
    })
    assert profile == {"name": "Анна Смирнова", "email": "anna@example.org", "country": "RU",
                       "city": "Казань", "birthday": "1990-05-17", "birth_year": 1990,
                       "profession": "Engineer", "industry": "Retail"}
    assert rest == {"plan": "pro", "company": "ACME"}


def test_messages_that_cannot_map_are_rejected_by_index() -> None:
    mapped = _mapper().map_batch([
        "text", {"type": "fly"}, {"type": "identify", "traits": {}},
        {"type": "alias", "userId": "u"}, {"type": "group", "userId": "u"},
        {"type": "track", "userId": "u"},
    ])
    assert [r.index for r in mapped.rejected] == [0, 1, 2, 3, 4, 5]
    assert mapped.events == [] and mapped.profiles == [] and mapped.aliases == []


def test_missing_message_id_is_derived_from_the_content() -> None:
    message = {"type": "track", "event": "Product Viewed", "userId": "u", "timestamp": NOW,
               "properties": {"product_id": "p"}}
    first = _mapper().map_batch([dict(message)]).events[0]["event_id"]
    again = _mapper().map_batch([dict(message)]).events[0]["event_id"]
    other = _mapper().map_batch([{**message, "userId": "v"}]).events[0]["event_id"]
    assert first == again != other


def _batch(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"batch": list(messages), "sentAt": NOW}


def test_endpoint_applies_a_mixed_batch(
    client: TestClient, tenant_a: TenantKeys, stores: Stores
) -> None:
    body = _batch(
        {"type": "track", "event": "Product Viewed", "anonymousId": "anon-9", "messageId": "t1",
         "timestamp": NOW, "properties": {"product_id": "p1"}},
        {"type": "identify", "userId": "u9", "anonymousId": "anon-9", "messageId": "i1",
         "traits": {"name": "Zoë", "email": "zoe@example.org", "plan": "gold",
                    "timezone": "Europe/Paris"}},
        {"type": "group", "userId": "u9", "groupId": "g-1", "traits": {"name": "Team"},
         "messageId": "g1"},
        {"type": "track", "event": "Unknown Thing", "userId": "u9", "messageId": "t2"},
        {"type": "identify", "userId": "u10", "traits": {"timezone": "Nowhere/Place"},
         "messageId": "i2"},
        {"type": "screen", "name": "Cart", "userId": "u9", "messageId": "s1", "timestamp": NOW},
    )
    response = client.post("/segment/v1/batch", json=body, headers=_basic(tenant_a.ingest))
    assert response.status_code == 200
    answer = response.json()
    assert answer["success"] is True
    assert [(r["index"], r["field"]) for r in answer["rejected"]] == [
        (3, "event"), (4, "traits.time_zone")]
    assert (answer["accepted"], answer["stored"]) == (4, 2)
    user = stores.users.get("default", "u9")
    assert user is not None
    assert (user.profile.name, user.profile.time_zone) == ("Zoë", "Europe/Paris")
    assert user.properties == {"plan": "gold", "group_id": "g-1", "group_name": "Team"}
    assert user.anonymous_ids == ["anon-9"]
    events = stores.events.for_user("default", "u9")
    assert sorted(e.type for e in events) == ["screen", "view"]
    again = client.post("/segment/v1/batch", json=body, headers=_basic(tenant_a.ingest)).json()
    assert (again["stored"], again["duplicates"]) == (0, 2)


def test_single_call_endpoints_and_alias(
    client: TestClient, tenant_a: TenantKeys, stores: Stores
) -> None:
    headers = {"Authorization": f"Bearer {tenant_a.ingest}"}
    track = {"event": "Product Added", "anonymousId": "cookie-1", "messageId": "x1",
             "timestamp": NOW, "properties": {"product_id": "p", "quantity": 1}}
    assert client.post("/segment/v1/track", json=track, headers=headers).json()["stored"] == 1
    alias = {"userId": "member-1", "previousId": "cookie-1", "messageId": "x2"}
    assert client.post("/segment/v1/alias", json=alias, headers=headers).json()["rejected"] == []
    assert [e.type for e in stores.events.for_user("default", "member-1")] == ["add_to_cart"]
    page = {"name": "Home", "userId": "member-1", "messageId": "x3", "timestamp": NOW}
    assert client.post("/segment/v1/p", json=page, headers=headers).json()["stored"] == 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Basic bm9wZTo="}, 401), ("serve", 403)],
)
def test_endpoint_needs_an_ingest_key(
    client: TestClient, tenant_a: TenantKeys, headers: Any, status: int
) -> None:
    if headers == "serve":
        headers = _basic(tenant_a.serve)
    response = client.post("/segment/v1/batch", json=_batch(), headers=headers)
    assert response.status_code == status


def test_track_map_from_settings(stores: Stores, tenant_a: TenantKeys) -> None:
    from personify.api import create_app
    from personify.settings import Settings

    settings = Settings(database_url="memory://", custom_event_types=["signup"],
                        segment_track_map={"Account Created": "signup"})
    with TestClient(create_app(settings, stores=stores)) as client:
        answer = client.post("/segment/v1/track", headers=_basic(tenant_a.ingest), json={
            "event": "Account Created", "userId": "u1", "messageId": "s-1", "timestamp": NOW,
        }).json()
    assert (answer["stored"], answer["rejected"]) == (1, [])
    stored = stores.events.get("default", "s-1")
    assert stored is not None and stored.type == "signup"
