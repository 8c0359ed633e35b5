"""Message tests through the Python client (sync and async) against a real uvicorn server:
send a campaign with variants, read its results, and get the field of a refused test."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from _uvicorn_server import admin_server, sqlite_stores

from personify.client import AsyncPersonifyClient, PersonifyClient
from personify.domain.errors import InvalidInput, NotFound
from personify.domain.users import User
from personify.storage.registry import Stores
from personify.storage.sql.messaging_definitions import SqlMessagingDefinitions

TEMPLATE = {"name": "hello", "recommendations": 0,
            "variants": [{"subject": "Hi {{ user.name }}", "text": "hello"}]}
CAMPAIGN: dict[str, Any] = {
    "name": "abc", "template": "hello", "send_at": "2026-01-01T00:00:00Z",
    "primary_metric": "opens",
    "variants": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5,
                                                 "subject": "Hello {{ user.name }}"}],
    "winner": {"test_share": 0.5, "after": "1h"},
}


@pytest.fixture
def stores(tmp_path: Any) -> Iterator[Stores]:
    with sqlite_stores(tmp_path) as opened:
        assert opened.database is not None
        SqlMessagingDefinitions(opened.database).put("default", "template", "hello", TEMPLATE,
                                                      enabled=True)
        opened.users.upsert("default", [User(user_id=f"u{k}") for k in range(30)])
        yield opened


@pytest.fixture
def server(stores: Stores) -> Iterator[tuple[str, str]]:
    with admin_server(stores) as served:
        yield served


def test_sync_client_sends_a_test_and_reads_its_results(server: tuple[str, str]) -> None:
    url, secret = server
    with PersonifyClient(url, secret) as client:
        sent = client.send_campaign(CAMPAIGN)
        assert sent["variants"] == ["a", "b"] and 0 < sent["enqueued"] < 30
        assert client.send_campaign(CAMPAIGN)["enqueued"] == 0
        results = client.campaign_results("abc")
        assert [v["name"] for v in results["variants"]] == ["a", "b"]
        assert results["primary_metric"] == "opens" and results["final"] is False
        assert results["decision"]["status"] == "testing"
        with pytest.raises(InvalidInput) as refused:
            client.send_campaign({**CAMPAIGN, "name": "bad", "variants": [
                {"name": "a", "weight": 0.7}, {"name": "b", "weight": 0.7}]})
        assert refused.value.field == "variants.weight"
        with pytest.raises(NotFound):
            client.campaign_results("bad")


def test_async_client_reads_results(server: tuple[str, str]) -> None:
    url, secret = server

    async def walk() -> dict[str, Any]:
        async with AsyncPersonifyClient(url, secret) as client:
            await client.send_campaign(CAMPAIGN)
            return await client.campaign_results("abc")

    assert asyncio.run(walk())["control"] == "a"
