"""Against a real uvicorn server (which decodes paths once, unlike Starlette's TestClient): ids
with ``/`` through the Python client and raw ``%2F`` URLs, and a rate-limited key seen by the
client as ``RateLimited`` with the server's ``Retry-After``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _uvicorn_server import running

from personify.api import create_app
from personify.client import PersonifyClient
from personify.domain.errors import NotFound, RateLimited
from personify.domain.keys import Scope
from personify.domain.users import Profile, User
from personify.settings import Settings
from personify.storage.registry import Stores, open_stores


@pytest.fixture
def stores() -> Iterator[Stores]:
    opened = open_stores("memory://")
    yield opened
    opened.close()


def _serve(stores: Stores, **settings: Any) -> Any:
    return running(create_app(Settings(database_url="memory://", **settings), stores=stores))


def test_ids_with_slashes_through_a_real_server(stores: Stores) -> None:
    _key, secret = stores.keys.create("default", "paths", [Scope.ADMIN])
    with _serve(stores) as url, PersonifyClient(url, secret, retries=0) as client:
        for user_id, city in (("x", "Paris"), ("x/export", "Rome"), ("50%/off", "Oslo")):
            client.put_user(User(user_id=user_id, profile=Profile(city=city)))
        assert client.get_user("x/export").profile.city == "Rome"
        assert client.get_user("50%/off").profile.city == "Oslo"
        auth = {"Authorization": f"Bearer {secret}"}
        raw = httpx.get(f"{url}/v1/users/x%2Fexport", headers=auth)
        assert raw.status_code == 200 and raw.json()["user_id"] == "x/export"
        export = httpx.get(f"{url}/v1/users/x/export", headers=auth)
        assert export.status_code == 200 and "Paris" in export.text and "Rome" not in export.text
        export = httpx.get(f"{url}/v1/users/x%2Fexport/export", headers=auth)
        assert export.status_code == 200 and "Rome" in export.text and "Paris" not in export.text
        client.put_item({"item_id": "shop/1", "title": "one"})
        assert client.get_item("shop/1").title == "one"
        client.delete_user("x/export")
        with pytest.raises(NotFound):
            client.get_user("x/export")
        assert client.get_user("x").profile.city == "Paris"


def test_a_rate_limited_key_through_a_real_server(stores: Stores) -> None:
    _key, secret = stores.keys.create("default", "limited", [Scope.ADMIN])
    with _serve(stores, rate_limit_per_minute=2) as url, \
            PersonifyClient(url, secret, retries=0) as client:
        client.list_users()
        client.list_users()
        with pytest.raises(RateLimited) as refused:
            client.list_users()
        assert refused.value.retry_after_s == 30
        assert httpx.get(f"{url}/health").status_code == 200
