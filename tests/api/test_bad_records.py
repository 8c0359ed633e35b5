"""One bad record never costs the good ones, on SQLite and PostgreSQL alike: deep nesting is a
422 for that record only, control characters and invisible ids are refused identically, bad
filters are 422 (not 500), NaN / Infinity are malformed JSON on every route, and the key is
checked before the body is read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from personify.client import PersonifyClient
from personify.storage.registry import Stores

MakeEvent = Callable[..., dict[str, Any]]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bad.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


DEEP = "@deep@"


def _nested(depth: int, *, as_dict: bool = False) -> str:
    """JSON text nested ``depth`` levels (deeper than Python's json module would write)."""
    return ('{"a":' * depth + "1" + "}" * depth) if as_dict else ("[" * depth + "1" + "]" * depth)


def _send(client: TestClient, method: str, path: str, body: Any, deep: str,
          headers: dict[str, str]) -> Any:
    text = json.dumps(body).replace(f'"{DEEP}"', deep)
    return client.request(method, path, content=text,
                          headers={**headers, "Content-Type": "application/json"})


@pytest.mark.parametrize("depth", [260, 1000])
@pytest.mark.parametrize("as_dict", [False, True])
def test_deep_nesting_rejects_that_record_only(
    client: TestClient, admin: dict[str, str], stores: Stores, make_event: MakeEvent,
    depth: int, as_dict: bool,
) -> None:
    deep = _nested(depth, as_dict=as_dict)
    bad = make_event(properties={"x": DEEP})
    good = make_event()
    r = _send(client, "POST", "/v1/events/batch", {"events": [bad, good]}, deep, admin)
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["stored"] == 1 and [x["index"] for x in body["rejected"]] == [0]
    single = _send(client, "POST", "/v1/events", bad, deep, admin)
    assert single.status_code == 422, single.text
    users = _send(client, "POST", "/v1/users:bulk", {"users": [
        {"user_id": "deep", "properties": {"x": DEEP}}, {"user_id": "fine"}]}, deep, admin)
    assert users.status_code in (200, 207), users.text
    assert users.json()["ids"] == ["fine"]
    put = _send(client, "PUT", "/v1/users/deep", {"properties": {"x": DEEP}}, deep, admin)
    assert put.status_code == 422, put.text
    segment = {"batch": [{"type": "track", "event": "Product Viewed", "userId": "u1",
                          "messageId": "s1", "properties": {"product_id": "p1", "x": DEEP}},
                         {"type": "track", "event": "Product Viewed", "userId": "u1",
                          "messageId": "s2", "properties": {"product_id": "p1"}}]}
    answer = _send(client, "POST", "/segment/v1/batch", segment, deep, admin)
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] >= 1


BAD_IDS = ["a\x00b", "\x00", "x\x1by", "\u200b\u200b", "\u2800", "\u3164", "\u00ad\u200d"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_control_characters_and_invisible_ids_are_refused(
    client: TestClient, admin: dict[str, str], stores: Stores, make_event: MakeEvent, bad: str,
) -> None:
    events = [make_event(user_id=bad), make_event(item_id=bad), make_event()]
    r = client.post("/v1/events/batch", json=events, headers=admin)
    assert r.status_code == 207, r.text
    assert [x["index"] for x in r.json()["rejected"]] == [0, 1]
    assert {x["field"] for x in r.json()["rejected"]} == {"user_id", "item_id"}
    assert client.post("/v1/events", json=make_event(user_id=bad), headers=admin
                       ).status_code == 422
    assert client.put("/v1/users/ok", json={"profile": {"name": bad}}, headers=admin
                      ).status_code in (200, 422)  # a name may hold invisible characters ...
    if "\x00" in bad or "\x1b" in bad:  # ... but never control characters
        assert client.put("/v1/users/ok", json={"profile": {"name": bad}}, headers=admin
                          ).status_code == 422
        assert client.put("/v1/items/ok", json={"title": bad}, headers=admin).status_code == 422
        assert client.get("/v1/users", params={"query": bad}, headers=admin).status_code == 422
        assert client.post("/v1/events", json=make_event(properties={"p": bad}), headers=admin
                           ).status_code == 422
        assert client.post("/v1/events", json=make_event(query=bad, type="search",
                                                          item_id=None), headers=admin
                           ).status_code == 422
    for route, body in (("/v1/recommendations", {"user_id": bad}),
                        ("/v1/recommendations/rerank", {"user_id": bad, "item_ids": ["i1"]})):
        assert client.post(route, json=body, headers=admin).status_code == 422
    assert client.get("/v1/recommendations", params={"user_id": bad}, headers=admin
                      ).status_code == 422
    assert client.post("/v1/users/ok/consents/profiling:grant", json={"source": bad},
                       headers=admin).status_code in (201, 422)
    segment = {"type": "track", "event": "Product Viewed", "userId": bad, "messageId": "m1",
               "properties": {"product_id": "p1"}}
    answer = client.post("/segment/v1/track", json=segment, headers=admin).json()
    assert answer["stored"] == 0 and len(answer["rejected"]) == 1
    assert stores.events.count("default") == 1


def test_recommendation_filters_are_422_not_500(client: TestClient, admin: dict[str, str]) -> None:
    empty = client.get("/v1/recommendations", params={"user_id": "u1", "category": ""},
                       headers=admin)
    assert empty.status_code == 422 and empty.json()["error"]["field"].startswith("category")
    many = client.post("/v1/recommendations/rerank", headers=admin,
                       json={"user_id": "u1", "item_ids": [f"i{i}" for i in range(201)]})
    assert many.status_code == 422 and many.json()["error"]["field"] == "item_ids"
    ok = client.post("/v1/recommendations/rerank", headers=admin,
                     json={"user_id": "u1", "item_ids": [f"i{i}" for i in range(200)]})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("method", "path", "text"),
    [("PUT", "/v1/users/u1", '{"profile": {"experience_years": NaN}}'),
     ("PUT", "/v1/users/u1", '{"properties": {"score": Infinity}}'),
     ("PUT", "/v1/items/i1", '{"price": Infinity}'),
     ("PUT", "/v1/items/i1", '{"properties": {"w": -Infinity}}'),
     ("POST", "/v1/events", '{"event_id": "e", "type": "view", "user_id": "u", '
                            '"item_id": "i", "timestamp": "2026-01-01T00:00:00Z", "value": NaN}')],
)
def test_nan_and_infinity_are_malformed_json_everywhere(
    client: TestClient, admin: dict[str, str], stores: Stores, method: str, path: str, text: str
) -> None:
    r = client.request(method, path, content=text,
                       headers={**admin, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "malformed_json"
    assert stores.users.get("default", "u1") is None


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/v1/users/u1"), ("PUT", "/v1/items/i1"), ("POST", "/v1/recommendations"),
     ("POST", "/v1/events"), ("POST", "/v1/users/u1/consents/profiling:grant"),
     ("POST", "/segment/v1/track")],
)
def test_the_key_is_checked_before_the_body(
    client: TestClient, method: str, path: str
) -> None:
    for headers in ({"X-API-Key": "not-a-key"}, {}):
        r = client.request(method, path, content=b'{"broken": ',
                           headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 401, (headers, r.text)


def _routes(routes: list[Any]) -> Any:
    for route in routes:
        inner = getattr(route, "original_router", None)  # an included router (FastAPI >= 0.13x)
        if inner is not None:
            yield from _routes(inner.routes)
        else:
            yield route


def test_every_api_route_checks_the_key_first(client: TestClient) -> None:
    from fastapi.routing import APIRoute

    from personify.api.routing import KeyFirstRoute

    api = [route for route in _routes(client.app.routes)  # type: ignore[attr-defined]
           if isinstance(route, APIRoute) and route.endpoint.__module__.startswith("personify.api")]
    assert len(api) > 50
    assert [route.path for route in api if not isinstance(route, KeyFirstRoute)] == []


class _Counting(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner, self.calls = inner, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return self.inner.handle_request(request)


def test_the_client_gets_the_good_records_stored_without_retrying(
    client: TestClient, admin: dict[str, str], make_event: MakeEvent, stores: Stores
) -> None:
    counting = _Counting(client._transport)
    with PersonifyClient("http://testserver", admin["Authorization"].split()[1],
                         transport=counting, backoff=0.01) as personify:
        result = personify.send_events([make_event(properties={"x": [[[1]]]}), make_event()])
    assert counting.calls == 1
    assert result.stored == 1 and [r.index for r in result.rejected] == [0]
