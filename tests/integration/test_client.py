"""The Python client (sync and async) against a real uvicorn server: every route, typed
results, domain errors from error bodies, and retries that never duplicate writes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from _uvicorn_server import admin_server, sqlite_stores

from personify.client import AsyncPersonifyClient, PersonifyClient
from personify.domain.errors import Forbidden, InvalidInput, LimitExceeded, NotFound, Unauthorized
from personify.domain.events import Event
from personify.domain.items import Item
from personify.domain.keys import Scope
from personify.domain.users import Profile, User
from personify.storage.registry import Stores

WHEN = (datetime.now(UTC) - timedelta(minutes=3)).isoformat()


@pytest.fixture
def stores(tmp_path: Any) -> Iterator[Stores]:
    with sqlite_stores(tmp_path) as opened:
        yield opened


@pytest.fixture
def server(stores: Stores) -> Iterator[tuple[str, str]]:
    """(base URL, admin secret) of a live server."""
    with admin_server(stores) as served:
        yield served


def _event(i: int, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"c-{i}", "type": "view", "user_id": "ana", "item_id": f"i{i % 3}",
            "timestamp": WHEN, **fields}


def test_sync_client_covers_the_api(server: tuple[str, str], stores: Stores) -> None:
    url, secret = server
    with PersonifyClient(url, secret) as client:
        assert client.health() == {"status": "ok"}
        assert client.ready()["status"] == "ready"
        user = client.put_user(User(user_id="ana", profile=Profile(name="Ана", country="RS")))
        assert isinstance(user, User) and user.created_at is not None
        assert client.patch_user("ana", {"profile": {"city": "Niš"}}).profile.city == "Niš"
        assert client.get_user("ana").profile.name == "Ана"
        assert [u.user_id for u in client.list_users(query="ана")] == ["ana"]
        bulk = client.bulk_upsert_users([{"user_id": "bo"}, {"user_id": ""}])
        assert bulk.ids == ["bo"] and [r.index for r in bulk.rejected] == [1]
        assert client.add_alias("ana", "device-1").anonymous_ids == ["device-1"]

        item = client.put_item(Item(item_id="i0", title="Чай", price=3.5))
        assert item.title == "Чай"
        assert client.patch_item("i0", {"tags": ["tea"]}).tags == ["tea"]
        assert client.get_item("i0").price == 3.5
        assert client.bulk_upsert_items([{"item_id": "i1"}, {"item_id": "i2"}]).accepted == 2
        assert [i.item_id for i in client.list_items(type="product")] == ["i0", "i1", "i2"]
        client.delete_item("i2")
        with pytest.raises(NotFound):
            client.get_item("i2")

        assert client.track(_event(0)).status == "stored"
        assert client.track(_event(0)).status == "duplicate"
        result = client.send_events([_event(i) for i in range(1, 6)] + [_event(9, type="zap")])
        assert (result.stored, result.accepted) == (5, 5)
        assert [(r.index, r.field) for r in result.rejected] == [(5, "type")]
        events = client.user_events("ana", limit=3)
        assert len(events) == 3 and all(isinstance(e, Event) for e in events)

        client.record_consent("ana", "email_marketing", "granted", text_version="v1")
        assert client.consents("ana").current["email_marketing"].state == "granted"

        created = client.create_key("tracker", [Scope.INGEST])
        assert created.secret.startswith("pfy_")
        assert created.key.key_id in {k.key_id for k in client.list_keys()}
        client.revoke_key(created.key.key_id)

        receipt = client.delete_user("ana")
        assert receipt.profile_deleted and receipt.events_deleted == 6
    assert stores.users.get("default", "ana") is None


def test_error_bodies_become_domain_errors(server: tuple[str, str], stores: Stores) -> None:
    url, secret = server
    ingest = stores.keys.create("default", "ingest only", [Scope.INGEST])[1]
    with PersonifyClient(url, secret, retries=0) as client:
        with pytest.raises(NotFound) as missing:
            client.get_user("nobody")
        assert missing.value.field == "user_id" and missing.value.details["status"] == 404
        with pytest.raises(InvalidInput) as bad:
            client.track(_event(1, timestamp="2999-01-01T00:00:00Z"))
        assert bad.value.field == "timestamp" and bad.value.accepted
        with pytest.raises(LimitExceeded):
            client.track(_event(2, properties={f"k{i}": "x" * 512 for i in range(64)}))
    with PersonifyClient(url, ingest) as client, pytest.raises(Forbidden):
        client.list_users()
    with PersonifyClient(url, "pfy_wrong_key") as client, pytest.raises(Unauthorized):
        client.get_user("x")


class FlakyTransport(httpx.BaseTransport):
    """Fails the first ``drops`` requests after sending them (the answer is lost), then answers
    ``503`` ``unavailable`` times, then passes through to the real server."""

    def __init__(self, drops: int, unavailable: int) -> None:
        self.real = httpx.HTTPTransport()
        self.drops, self.unavailable, self.requests = drops, unavailable, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.drops:
            self.drops -= 1
            response = self.real.handle_request(request)
            response.read()
            raise httpx.ReadError("connection reset after the server stored the batch")
        if self.unavailable:
            self.unavailable -= 1
            return httpx.Response(503, headers={"Retry-After": "0"},
                                  json={"error": {"code": "unavailable", "message": "busy"}})
        return self.real.handle_request(request)


def test_retries_after_lost_answers_store_nothing_twice(
    server: tuple[str, str], stores: Stores
) -> None:
    url, secret = server
    flaky = FlakyTransport(drops=2, unavailable=1)
    with PersonifyClient(url, secret, retries=4, backoff=0.01, transport=flaky) as client:
        result = client.send_events([_event(i, user_id="retry") for i in range(100)])
    assert flaky.requests == 4
    # the retries carry the lost attempt's Idempotency-Key: the server answers with the
    # first answer (100 stored) instead of running the batch again
    assert result.accepted == 100 and result.stored == 100 and result.duplicates == 0
    assert stores.events.count("default") == 100


def test_a_lost_answer_to_a_consent_is_recorded_once(
    server: tuple[str, str], stores: Stores
) -> None:
    """A consent record appends each time it runs; its retry (same Idempotency-Key) does not."""
    url, secret = server
    flaky = FlakyTransport(drops=1, unavailable=0)
    with PersonifyClient(url, secret, retries=2, backoff=0.01, transport=flaky) as client:
        client.record_consent("lost-answer", "email_marketing", "granted")
    assert flaky.requests == 2
    assert len(stores.consents.history("default", "lost-answer")) == 1


def test_retries_give_up_after_the_budget(server: tuple[str, str]) -> None:
    url, secret = server
    flaky = FlakyTransport(drops=5, unavailable=0)
    with PersonifyClient(url, secret, retries=2, backoff=0.01, transport=flaky) as client, \
            pytest.raises(httpx.ReadError):
        client.health()
    assert flaky.requests == 3


def test_async_client(server: tuple[str, str], stores: Stores) -> None:
    url, secret = server

    async def scenario() -> None:
        async with AsyncPersonifyClient(url, secret) as client:
            await client.put_user({"user_id": "async-user", "profile": {"name": "🙂"}})
            results = await asyncio.gather(*(
                client.track(_event(100 + i, user_id="async-user")) for i in range(10)))
            assert {r.status for r in results} == {"stored"}
            batch = await client.send_events([_event(100 + i, user_id="async-user")
                                              for i in range(12)])
            assert (batch.stored, batch.duplicates) == (2, 10)
            assert len(await client.user_events("async-user", limit=50)) == 12
            with pytest.raises(NotFound):
                await client.get_user("missing")

    asyncio.run(scenario())
    assert stores.events.count("default") == 12


def test_large_sends_are_split_at_the_server_limit_keeping_indexes() -> None:
    from personify.client import _calls
    from personify.client.results import IngestResult

    chunked = _calls.send_events([_event(i) for i in range(25_001)])
    assert chunked.offsets == [0, 10_000, 20_000]
    assert [len(c.json) for c in chunked.calls] == [10_000, 10_000, 5_001]
    result = IngestResult()
    result.merge({"accepted": 1, "stored": 1, "duplicates": 0,
                  "rejected": [{"index": 3, "code": "invalid_input", "message": "m"}]}, 20_000)
    assert result.rejected[0].index == 20_003


def test_people_through_both_clients(server: tuple[str, str]) -> None:
    url, secret = server
    with PersonifyClient(url, secret) as client:
        for i, other in enumerate(["bo", "cy", "di"]):
            client.track({"event_id": f"p-{i}", "type": "reply", "user_id": "hub",
                          "timestamp": WHEN, "properties": {"person_id": other}})
        client.track({"event_id": "p-9", "type": "follow", "user_id": "ana", "timestamp": WHEN,
                      "properties": {"person_id": "hub"}})
        for person in ("ana", "bo", "cy", "di", "hub"):
            client.record_consent(person, "personalization", "granted")
        people = client.people("ana", n=2)
        assert people["user_id"] == "ana" and len(people["people"]) == 2
        assert {p["person_id"] for p in people["people"]} <= {"bo", "cy", "di"}

    async def run() -> dict[str, Any]:
        async with AsyncPersonifyClient(url, secret) as client:
            return await client.people("bo", n=5)

    assert "hub" not in {p["person_id"] for p in asyncio.run(run())["people"]}


def test_pages_and_session_recommendations_through_both_clients(
    server: tuple[str, str], stores: Stores
) -> None:
    url, secret = server
    stores.catalog.upsert("default", [
        Item(item_id=f"b{i}", title=f"Book {i}", categories=["books"],
             created_at=datetime.now(UTC) - timedelta(days=i)) for i in range(8)])
    page = {"rows": [{"id": "fresh", "kind": "new_for_you", "n": 3,
                      "title": {"en": "Fresh", "ru": "Свежее"}}]}
    with PersonifyClient(url, secret) as client:
        assert client.put_page("shop", page)["stored"] is True
        assert client.pages() == ["home", "shop"]
        assert client.page_definition("shop")["definition"]["rows"][0]["id"] == "fresh"
        shown = client.page("shop", language="ru")
        assert [r["title"] for r in shown["rows"]] == ["Свежее"]
        assert len(shown["rows"][0]["items"]) == 3
        answer = client.recommend_session(["b1", {"item_id": "b2", "type": "add_to_cart"}], n=4)
        assert answer.recommendation_id and answer.items
        assert not {"b1", "b2"} & set(answer.item_ids)
        with pytest.raises(InvalidInput) as bad:
            client.recommend_session(["b1"], n=0)
        assert bad.value.field is not None and "n" in bad.value.field
        client.delete_page("shop")
        with pytest.raises(NotFound) as missing:
            client.page("shop")
        assert missing.value.field == "name"

    async def run() -> None:
        async with AsyncPersonifyClient(url, secret) as client:
            home = await client.page("home")
            assert "rows" in home
            answer = await client.recommend_session(["b3"], n=2)
            assert len(answer.items) == 2

    asyncio.run(run())
