"""The official ``segment-analytics-python`` and ``rudder-sdk-python`` clients, unchanged, send
to Personify's Segment-compatible endpoint on a real uvicorn server: events land with the right
types, profiles and identities merge, and a re-sent batch stores nothing twice."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from _uvicorn_server import running

from personify.api import create_app
from personify.domain import person_tokens
from personify.domain.keys import Scope
from personify.settings import Settings
from personify.storage.registry import Stores, open_stores

TOKEN_SECRET = "t" * 32


def _person_token(user_id: str) -> str:
    """What the site's backend hands the page for its logged-in visitor (docs/security.md)."""
    secret = person_tokens.tenant_secret(TOKEN_SECRET.encode(), "default")
    return person_tokens.issue(secret, user_id, expiry=int(time.time()) + 600)


@pytest.fixture
def stores(tmp_path: Any) -> Iterator[Stores]:
    opened = open_stores(f"sqlite:///{tmp_path}/segment.db")
    yield opened
    opened.close()


@pytest.fixture
def server(stores: Stores) -> Iterator[tuple[str, str]]:
    """(base URL, write key): a Personify key with the ``ingest`` scope."""
    _key, secret = stores.keys.create("default", "segment write key", [Scope.INGEST])
    app = create_app(Settings(database_url="memory://", person_token_secret=TOKEN_SECRET),
                     stores=stores)
    with running(app) as url:
        yield url, secret


def _segment_client(host: str, write_key: str) -> Any:
    from segment.analytics.client import Client

    return Client(write_key=write_key, host=host, sync_mode=True, max_retries=1,
                  on_error=_raise)


def _rudder_client(host: str, write_key: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from rudderstack.analytics.client import Client

    return Client(write_key=write_key, host=host, sync_mode=True, max_retries=1,
                  on_error=_raise)


def _raise(error: Exception, _batch: Any) -> None:
    raise error


CLIENTS = {"segment": _segment_client, "rudderstack": _rudder_client}


@pytest.mark.parametrize("library", sorted(CLIENTS))
def test_official_client_sends_unchanged(
    server: tuple[str, str], stores: Stores, library: str
) -> None:
    url, write_key = server
    client = CLIENTS[library](f"{url}/segment", write_key)
    when = datetime.now(UTC) - timedelta(minutes=2)
    client.page(anonymous_id="cookie-42", name="Home", properties={"url": f"{url}/"},
                timestamp=when)
    client.track(anonymous_id="cookie-42", event="Product Viewed",
                 properties={"product_id": "sku-1", "price": 19.99}, timestamp=when,
                 context={"locale": "ru-RU", "device": {"type": "ios"}, "ip": "198.51.100.7"})
    client.identify(user_id="user-42", traits={"name": "Фёдор 🚀", "email": "f@example.org",
                                                "address": {"country": "RU"}, "plan": "pro"})
    # user-42 exists now: a public write key changes them only with their person token
    signed = {"person_token": _person_token("user-42")}
    client.alias(previous_id="cookie-42", user_id="user-42", context=signed)
    client.track(user_id="user-42", event="Product Added",
                 properties={"product_id": "sku-1", "quantity": 2}, timestamp=when)
    client.track(user_id="user-42", event="Order Completed", message_id=f"{library}-order-1",
                 properties={"order_id": "o-1", "products": [
                     {"product_id": "sku-1", "price": 19.99, "quantity": 2},
                     {"sku": "sku-2", "price": 5.0, "quantity": 1}]}, timestamp=when)
    client.group(user_id="user-42", group_id="team-7", traits={"name": "Team 7"}, context=signed)
    client.screen(user_id="user-42", name="Checkout", timestamp=when)
    client.flush()

    events = stores.events.for_user("default", "user-42", limit=50)
    assert sorted(e.type for e in events) == sorted(
        ["page", "view", "add_to_cart", "purchase", "purchase", "screen"])
    view = next(e for e in events if e.type == "view")
    assert (view.item_id, view.price, view.anonymous_id) == ("sku-1", 19.99, "cookie-42")
    assert view.context.locale == "ru-RU" and view.context.device == "ios"
    assert "198.51.100.7" not in view.model_dump_json()
    purchases = sorted((e.item_id, e.quantity, e.order_id) for e in events if e.type == "purchase")
    assert purchases == [("sku-1", 2.0, "o-1"), ("sku-2", 1.0, "o-1")]
    user = stores.users.get("default", "user-42")
    assert user is not None
    assert (user.profile.name, user.profile.country) == ("Фёдор 🚀", "RU")
    assert user.properties == {"plan": "pro", "group_id": "team-7"} | {"group_name": "Team 7"}
    assert user.anonymous_ids == ["cookie-42"]

    before = stores.events.count("default")
    client.track(user_id="user-42", event="Order Completed", message_id=f"{library}-order-1",
                 properties={"order_id": "o-1", "products": [
                     {"product_id": "sku-1", "price": 19.99, "quantity": 2},
                     {"sku": "sku-2", "price": 5.0, "quantity": 1}]}, timestamp=when)
    client.flush()
    assert stores.events.count("default") == before  # re-sent messageId: no duplicates


def test_resent_raw_batch_is_acknowledged_not_stored_twice(
    server: tuple[str, str], stores: Stores
) -> None:
    url, write_key = server
    when = datetime.now(UTC).isoformat()
    batch = {"batch": [
        {"type": "track", "event": "Product Clicked", "userId": f"u{i}", "messageId": f"m-{i}",
         "timestamp": when, "properties": {"product_id": f"p{i}"}} for i in range(50)
    ] + [{"type": "track", "event": "Never Declared", "userId": "u", "messageId": "bad"}]}
    first = requests.post(f"{url}/segment/v1/batch", json=batch, auth=(write_key, ""), timeout=10)
    again = requests.post(f"{url}/segment/v1/batch", json=batch, auth=(write_key, ""), timeout=10)
    assert first.status_code == again.status_code == 200
    assert (first.json()["stored"], again.json()["stored"], again.json()["duplicates"]) == (
        50, 0, 50)
    assert [r["index"] for r in first.json()["rejected"]] == [50]
    assert stores.events.count("default") == 50


def test_wrong_write_key_is_refused(server: tuple[str, str]) -> None:
    url, _ = server
    client = _segment_client(f"{url}/segment", "pfy_unknown_key")
    from segment.analytics.request import APIError

    with pytest.raises(APIError) as caught:
        client.track(user_id="u", event="Product Viewed", properties={"product_id": "p"})
    assert caught.value.status == 401
