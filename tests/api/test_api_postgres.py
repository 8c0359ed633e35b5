"""The HTTP API over real PostgreSQL: the batch with bad rows, duplicates across retries,
Unicode and SQL-looking text, erasure and identity merge behave as on SQLite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from personify.storage.registry import Stores

MakeEvent = Callable[..., dict[str, Any]]
pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


def test_batch_with_bad_rows_and_retries(
    client: TestClient, admin: dict[str, str], stores: Stores, make_event: MakeEvent
) -> None:
    events = [make_event(event_id=f"pg-{i}", user_id=f"u{i % 50}") for i in range(3000)]
    events[10] = {**events[10], "type": "unknown"}
    events[20] = {**events[20], "timestamp": "1900-01-01T00:00:00Z"}
    events[30] = {**events[30], "event_id": "pg-0"}  # repeats an id within the batch
    first = client.post("/v1/events/batch", json=events, headers=admin)
    assert first.status_code == 207
    body = first.json()
    assert [r["index"] for r in body["rejected"]] == [10, 20]
    assert (body["stored"], body["duplicates"]) == (2997, 1)
    retry = client.post("/v1/events/batch", json=events, headers=admin).json()
    assert (retry["stored"], retry["duplicates"]) == (0, 2998)
    assert stores.events.count("default") == 2997


def test_unicode_sql_text_and_erasure(
    client: TestClient, admin: dict[str, str], stores: Stores, make_event: MakeEvent
) -> None:
    text = "Ёж 🦔 '); DROP TABLE personify_events; --"
    put = client.put(f"/v1/users/{text}", headers=admin,
                     json={"profile": {"name": text, "bio": text}, "properties": {"note": text}})
    assert put.status_code == 200
    client.post("/v1/events/batch", headers=admin, json=[
        make_event(user_id=None, anonymous_id="pg-anon", query=text, type="search",
                   item_id=None),
    ])
    assert client.post(f"/v1/users/{text}/aliases", json={"anonymous_id": "pg-anon"},
                       headers=admin).status_code == 200
    [event] = client.get(f"/v1/users/{text}/events", headers=admin).json()["events"]
    assert event["query"] == text
    found = client.get("/v1/users", params={"query": "ёж"}, headers=admin).json()["users"]
    assert [u["user_id"] for u in found] == [text]
    receipt = client.delete(f"/v1/users/{text}", headers=admin).json()
    assert receipt["events_deleted"] == 1 and receipt["profile_deleted"]
    replay = client.post("/v1/events", json=make_event(user_id=text), headers=admin)
    assert replay.status_code == 410
    assert stores.events.count("default") == 0
