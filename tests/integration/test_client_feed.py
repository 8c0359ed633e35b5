"""The networking feed through both Python clients against a live server (an injected clock):
the entries, shares passed through, and the server's refusal of bad shares as InvalidInput."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _uvicorn_server import admin_server, sqlite_stores

from personify.client import AsyncPersonifyClient, PersonifyClient
from personify.domain.errors import InvalidInput, NotFound
from personify.domain.items import Item
from personify.domain.users import Profile, User
from personify.storage.registry import Stores

NOW = datetime(2026, 5, 4, 23, 0, tzinfo=UTC)


@pytest.fixture
def stores(tmp_path: Any) -> Iterator[Stores]:
    with sqlite_stores(tmp_path) as opened:
        yield opened


@pytest.fixture
def server(stores: Stores) -> Iterator[tuple[str, str]]:
    with admin_server(stores, clock=lambda: NOW) as served:
        yield served


def test_feed_through_both_clients(server: tuple[str, str], stores: Stores) -> None:
    url, secret = server
    stores.users.upsert("default", [User(user_id="ana", profile=Profile(skills=["rust"]))])
    start = (NOW + timedelta(days=1)).isoformat()
    with PersonifyClient(url, secret) as client:
        client.record_consent("ana", "personalization", "granted")
        client.put_item(Item(item_id="conf", type="event", title="RustConf", tags=["rust"],
                             properties={"starts_at": start, "capacity": 100}))
        client.put_item(Item(item_id="proj", type="project", title="A crate",
                             properties={"required_skills": ["rust"], "roles_open": 1}))
        with pytest.raises(InvalidInput) as refused:  # an event that already started
            client.put_item(Item(item_id="old", type="event",
                                 properties={"starts_at": (NOW - timedelta(hours=1)).isoformat()}))
        assert refused.value.field == "properties.starts_at"
        feed = client.feed("ana", n=5)
        assert {e["id"] for e in feed["entries"]} == {"conf", "proj"}
        assert all(e["reasons"] for e in feed["entries"])
        only = client.feed("ana", shares={"events": 1})
        assert [e["id"] for e in only["entries"]] == ["conf"]
        with pytest.raises(InvalidInput) as bad:
            client.feed("ana", shares={"planets": 1})
        assert bad.value.field == "shares"
        assert client.propose_introductions("ana", n=2) == []  # nobody to meet yet
        with pytest.raises(NotFound) as unknown:
            client.propose_introductions("nobody")
        assert unknown.value.field == "user_id"

    async def run() -> dict[str, Any]:
        async with AsyncPersonifyClient(url, secret) as client:
            return await client.feed("ana", n=5, shares={"projects": 1})

    assert [e["id"] for e in asyncio.run(run())["entries"]] == ["proj"]
