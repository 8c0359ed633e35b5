"""Event ingestion over HTTP, and every bad input the issue lists: malformed JSON, wrong types,
unknown types, no subject, timestamps out of range, oversized payloads, 10,000-event batches with
bad rows, duplicates within a batch and across retries, Unicode, SQL-looking strings."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from fastapi.testclient import TestClient

from personify.domain import limits
from personify.storage.registry import Stores

if TYPE_CHECKING:
    from conftest import TenantKeys

MakeEvent = Callable[..., dict[str, Any]]


def test_single_event_is_stored_then_acknowledged_as_duplicate(
    client: TestClient, tenant_a: TenantKeys, stores: Stores, make_event: MakeEvent
) -> None:
    event = make_event(event_id="e-1")
    first = client.post("/v1/events", json=event, headers=tenant_a.headers("ingest"))
    again = client.post("/v1/events", json=event, headers=tenant_a.headers("ingest"))
    assert first.json() == {"event_id": "e-1", "status": "stored"}
    assert again.json() == {"event_id": "e-1", "status": "duplicate"}
    assert stores.events.count("default") == 1


def test_client_cannot_set_the_server_receive_time(
    client: TestClient, admin: dict[str, str], stores: Stores, make_event: MakeEvent
) -> None:
    client.post("/v1/events", json=make_event(event_id="r1", received_at="2001-01-01T00:00:00Z"),
                headers=admin)
    stored = stores.events.get("default", "r1")
    assert stored is not None and stored.received_at is not None
    assert stored.received_at.year >= 2025


@pytest.mark.parametrize(
    ("fields", "field", "status"),
    [
        ({"type": "teleport"}, "type", 422),
        ({"user_id": None, "anonymous_id": None}, "user_id", 422),
        ({"timestamp": (datetime.now(UTC) + timedelta(days=3)).isoformat()}, "timestamp", 422),
        ({"timestamp": "1970-01-01T00:00:00Z"}, "timestamp", 422),
        ({"timestamp": "yesterday"}, "timestamp", 422),
        ({"price": "cheap"}, "price", 422),
        ({"quantity": [1]}, "quantity", 422),
        ({"item_id": None}, "item_id", 422),
        ({"user_id": 12}, "user_id", 422),
        ({"user_id": "x" * 129}, "user_id", 422),
        ({"query": "q" * 513}, "query", 422),
        ({"text": "t" * (limits.MAX_EVENT_TEXT + 1)}, "text", 422),
        ({"text": "bad\x00text"}, "text", 422),
        ({"text": ["a list"]}, "text", 422),
        ({"properties": {f"p{i}": i for i in range(65)}}, "properties", 422),
        ({"colour": "red"}, "colour", 422),
    ],
)
def test_bad_single_event_names_the_field(
    client: TestClient, admin: dict[str, str], make_event: MakeEvent,
    fields: dict[str, Any], field: str, status: int,
) -> None:
    event = make_event()
    for name, value in fields.items():
        if value is None:
            event.pop(name, None)
        else:
            event[name] = value
    response = client.post("/v1/events", json=event, headers=admin)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["field"].startswith(field)
    assert error["accepted"]


def test_custom_type_is_accepted_only_when_declared(
    client: TestClient, admin: dict[str, str], make_event: MakeEvent
) -> None:
    ok = client.post("/v1/events", json=make_event(type="signup", item_id=None), headers=admin)
    assert ok.status_code == 200
    bad = client.post("/v1/events", json=make_event(type="levelup"), headers=admin)
    assert bad.status_code == 422
    assert "signup" in bad.json()["error"]["accepted"]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2", b"", b"\xff\xfe", b"{'a': 1}"])
@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch", "/v1/users:bulk"])
def test_malformed_json_is_400(
    client: TestClient, admin: dict[str, str], body: bytes, path: str
) -> None:
    headers = {**admin, "Content-Type": "application/json"}
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_malformed_json_on_a_schema_route_is_400(client: TestClient, admin: dict[str, str]) -> None:
    response = client.put("/v1/users/u1", content=b'{"profile": ',
                          headers={**admin, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        **response.json()["error"], "code": "malformed_json", "field": "body"}


@pytest.mark.parametrize("body", [{"events": "many"}, 42, "text", {"other": []}])
def test_batch_of_the_wrong_shape_is_422(
    client: TestClient, admin: dict[str, str], body: Any
) -> None:
    response = client.post("/v1/events/batch", json=body, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "events"


def test_big_batch_with_a_few_bad_rows_stores_the_good_ones(
    client: TestClient, tenant_a: TenantKeys, stores: Stores, make_event: MakeEvent
) -> None:
    events = [make_event(event_id=f"big-{i}", user_id=f"u{i % 97}", item_id=f"i{i % 31}")
              for i in range(limits.MAX_BATCH_EVENTS)]
    bad = {17: {"type": "nope"}, 4242: {"timestamp": "2999-01-01T00:00:00Z"},
           9999: {"user_id": None}, 5000: {"price": -1}}
    for index, change in bad.items():
        events[index] = {k: v for k, v in {**events[index], **change}.items() if v is not None}
    events[6000] = "not an object"  # type: ignore[call-overload]
    response = client.post("/v1/events/batch", json={"events": events},
                           headers=tenant_a.headers("ingest"))
    assert response.status_code == 207
    body = response.json()
    rejected = {r["index"]: r for r in body["rejected"]}
    assert set(rejected) == {*bad, 6000}
    assert rejected[17]["field"] == "type" and rejected[17]["id"] == "big-17"
    assert rejected[4242]["field"] == "timestamp"
    assert rejected[5000]["field"] == "price"
    assert body["stored"] == body["accepted"] == limits.MAX_BATCH_EVENTS - 5
    assert stores.events.count("default") == limits.MAX_BATCH_EVENTS - 5


def test_over_the_batch_limit_is_413(
    client: TestClient, admin: dict[str, str], make_event: MakeEvent
) -> None:
    events = [make_event()] * (limits.MAX_BATCH_EVENTS + 1)
    response = client.post("/v1/events/batch", json=events, headers=admin)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "limit_exceeded"


def test_duplicates_within_a_batch_and_across_retries(
    client: TestClient, admin: dict[str, str], stores: Stores, make_event: MakeEvent
) -> None:
    events = [make_event(event_id=f"d{i % 5}") for i in range(12)]
    first = client.post("/v1/events/batch", json=events, headers=admin).json()
    assert (first["stored"], first["duplicates"], first["accepted"]) == (5, 7, 12)
    retry = client.post("/v1/events/batch", json=events, headers=admin).json()
    assert (retry["stored"], retry["duplicates"]) == (0, 12)
    assert stores.events.count("default") == 5


def test_oversized_event_is_rejected_by_index(
    client: TestClient, admin: dict[str, str], make_event: MakeEvent
) -> None:
    huge = make_event(properties={f"k{i}": "x" * 512 for i in range(64)})
    response = client.post("/v1/events/batch", json=[make_event(), huge], headers=admin)
    assert response.status_code == 207
    [rejection] = response.json()["rejected"]
    assert (rejection["index"], rejection["code"]) == (1, "limit_exceeded")


TEXTS = ["Привет, мир", "🙂🚀👩‍👩‍👧", "'; DROP TABLE personify_events; --", "\" OR 1=1 --", "名前"]


@pytest.mark.parametrize("text", TEXTS)
def test_unicode_and_sql_looking_text_round_trips(
    client: TestClient, admin: dict[str, str], stores: Stores, make_event: MakeEvent, text: str
) -> None:
    event = make_event(
        event_id=f"{text}-id", user_id=f"{text}-user", item_id=f"{text}-item", type="search",
        query=text, order_id=text, currency=text[:3], recommendation_id=text,
        properties={text[:10]: text, "list": [text]},
        context={"device": text, "page": text, "locale": text,
                 "location": {"country": text, "city": text, "region": text},
                 "extra": {"note": text}},
    )
    response = client.post("/v1/events", json=event, headers=admin)
    assert response.status_code == 200, response.text
    listed = client.get(f"/v1/users/{text}-user/events", headers=admin)
    assert listed.status_code == 200
    [stored] = listed.json()["events"]
    assert stored["query"] == text and stored["properties"][text[:10]] == text
    assert stored["context"]["location"]["city"] == text
    assert stores.events.count("default") == 1


def test_gzip_encoded_batch(
    client: TestClient, admin: dict[str, str], stores: Stores, make_event: MakeEvent
) -> None:
    body = gzip.compress(orjson.dumps([make_event(), make_event()]))
    response = client.post("/v1/events/batch", content=body,
                           headers={**admin, "Content-Encoding": "gzip",
                                    "Content-Type": "application/json"})
    assert response.json()["stored"] == 2
    assert stores.events.count("default") == 2


def test_user_events_filters_and_limits(
    client: TestClient, admin: dict[str, str], make_event: MakeEvent
) -> None:
    now = datetime.now(UTC)
    events = [make_event(user_id="reader", type=kind,
                         timestamp=(now - timedelta(hours=i)).isoformat())
              for i, kind in enumerate(["view", "click", "view", "purchase"])]
    client.post("/v1/events/batch", json=events, headers=admin)
    views = client.get("/v1/users/reader/events", params={"type": "view"}, headers=admin).json()
    assert [e["type"] for e in views["events"]] == ["view", "view"]
    latest = client.get("/v1/users/reader/events", params={"limit": 1}, headers=admin).json()
    assert latest["events"][0]["event_id"] == events[0]["event_id"]
    bad = client.get("/v1/users/reader/events", params={"limit": 0}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "limit"


def test_an_event_without_a_timestamp_gets_the_receive_time_and_says_so(
    client: TestClient, tenant_a: TenantKeys, stores: Stores
) -> None:
    h = tenant_a.headers("ingest")
    before = datetime.now(UTC)
    got = client.post("/v1/events", json={"event_id": "no-ts", "type": "view",
                                           "user_id": "u1", "item_id": "i1"}, headers=h)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["status"] == "stored" and body["notes"] == [
        "timestamp absent: set to the server's receive time"]
    stored = stores.events.get("default", "no-ts")
    assert stored is not None and before <= stored.timestamp <= datetime.now(UTC)
    assert datetime.fromisoformat(body["timestamp"]) == stored.timestamp
    batch = client.post("/v1/events/batch", json=[
        {"event_id": "b-1", "type": "view", "user_id": "u1", "item_id": "i1",
         "timestamp": "2026-03-01T10:00:00Z"},
        {"event_id": "b-2", "type": "view", "user_id": "u1", "item_id": "i1"},
    ], headers=h)
    assert batch.status_code == 200 and batch.json()["timestamps_defaulted"] == [1]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["EventIn"]
    assert "timestamp" not in schema.get("required", [])


def test_event_text_is_stored_with_the_event(
    client: TestClient, admin: dict[str, str], stores: Stores, make_event: MakeEvent
) -> None:
    review = "Ужасная доставка,\nбольше не закажу. <b>Never again!</b>"
    response = client.post("/v1/events", json=make_event(event_id="t1", text=review),
                           headers=admin)
    assert response.status_code == 200, response.text
    stored = stores.events.get("default", "t1")
    assert stored is not None and stored.text == review
    without = client.post("/v1/events", json=make_event(event_id="t2"), headers=admin)
    assert without.status_code == 200
    plain = stores.events.get("default", "t2")
    assert plain is not None and plain.text is None
