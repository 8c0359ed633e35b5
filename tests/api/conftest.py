"""Fixtures for the HTTP API tests: stores over ``memory://`` (or a SQLite file / PostgreSQL
where a module overrides ``database_url``), two tenants with keys of every scope, a TestClient."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _tenant_keys import CUSTOM_TYPES, TenantKeys
from fastapi import FastAPI

from personify.api import create_app
from personify.domain.keys import Scope
from personify.settings import Settings
from personify.storage.registry import Stores, open_stores

with warnings.catch_warnings():
    # Starlette asks for the ``httpx2`` package; plain httpx works the same for these tests.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient



@pytest.fixture
def database_url() -> str:
    return "memory://"


@pytest.fixture
def stores(database_url: str) -> Iterator[Stores]:
    opened = open_stores(database_url)
    yield opened
    opened.close()


def _keys(stores: Stores, tenant: str) -> TenantKeys:
    secrets = {
        scope: stores.keys.create(tenant, f"{tenant} {scope}", [Scope(scope)])[1]
        for scope in ("admin", "ingest", "serve")
    }
    return TenantKeys(tenant=tenant, **secrets)


@pytest.fixture
def tenant_a(stores: Stores) -> TenantKeys:
    return _keys(stores, "default")


@pytest.fixture
def tenant_b(stores: Stores) -> TenantKeys:
    return _keys(stores, "globex")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, custom_event_types=CUSTOM_TYPES, demo=False)


@pytest.fixture
def app(settings: Settings, stores: Stores, tenant_a: TenantKeys, tenant_b: TenantKeys) -> FastAPI:
    return create_app(settings, stores=stores)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=True) as test_client:
        yield test_client


@pytest.fixture
def admin(tenant_a: TenantKeys) -> dict[str, str]:
    """Headers with tenant A's admin key."""
    return tenant_a.headers("admin")


_counter = itertools.count()


@pytest.fixture
def make_event() -> Callable[..., dict[str, Any]]:
    """A valid view event as JSON, with a fresh id; keyword arguments override fields."""

    def make(**fields: Any) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event_id": f"ev-{next(_counter)}",
            "type": "view",
            "user_id": "u1",
            "item_id": "i1",
            "timestamp": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        }
        event.update(fields)
        return {k: v for k, v in event.items() if v is not None}

    return make
