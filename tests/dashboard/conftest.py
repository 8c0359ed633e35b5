"""Fixtures for the dashboard's server-side tests: the shop in ``memory://`` stores, the API app
with the online engine and the dashboard mounted (whether or not ``create_app`` does it yet),
and a TestClient logged in with the demo admin key."""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from personify.api.app import create_app
from personify.dashboard import mount_dashboard
from personify.settings import DEMO_ADMIN_KEY, Settings
from personify.storage.registry import Stores, open_stores

from .shop import load_shop, train_shop_model

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

WARM_UP_THREAD = "personify-warm-up"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def dashboard_mounted(app: FastAPI) -> bool:
    return any(getattr(r, "path", "").startswith("/dashboard") for r in app.routes)


def build_app(stores: Stores, model_dir: Path, *, results_dir: Path | None = None) -> FastAPI:
    """The application as ``create_app`` builds it (its runtime started), with the dashboard
    when the factory does not mount it."""
    settings = Settings(demo=True, model_dir=str(model_dir), database_url="memory://")
    app = create_app(settings, stores=stores)
    app.state.runtime.start()  # the warm-up replays the shop now (the fixtures wait for it)
    if not dashboard_mounted(app):
        mount_dashboard(app, results_dir=results_dir or model_dir / "no-results")
    elif results_dir is not None:
        app.state.dashboard.results_dir = results_dir
    return app


def close_app(app: FastAPI) -> None:
    """Stop the dashboard's background builds (and the engine when the test built it) before
    the stores close: a scan running into a closed database can crash SQLite."""
    app.state.dashboard.close()
    for thread in threading.enumerate():  # the engine's warm-up replays the store on start
        if thread.name == WARM_UP_THREAD:
            thread.join(30)
    app.state.runtime.close()


def login(client: TestClient, key: str = DEMO_ADMIN_KEY) -> Any:
    page = client.get("/dashboard/login")
    token = CSRF_RE.search(page.text)
    assert token is not None
    return client.post(
        "/dashboard/login",
        data={"key": key, "csrf_token": token.group(1), "next": "/dashboard/"},
        follow_redirects=False,
    )


def csrf_of(client: TestClient, path: str = "/dashboard/settings") -> str:
    found = CSRF_RE.search(client.get(path).text)
    assert found is not None
    return found.group(1)


@pytest.fixture
def shop_stores() -> Iterator[Stores]:
    stores = open_stores("memory://")
    load_shop(stores)
    yield stores
    stores.close()


@pytest.fixture
def app(shop_stores: Stores, tmp_path: Path) -> Iterator[FastAPI]:
    train_shop_model(shop_stores, tmp_path / "models")
    built = build_app(shop_stores, tmp_path / "models")
    # let the engine's background warm-up finish replaying the shop first, so that a test's
    # erasure is not interleaved with it (that interleaving is covered by
    # tests/api/test_erasure_reaches_everything.py)
    for thread in threading.enumerate():
        if thread.name == WARM_UP_THREAD:
            thread.join(30)
    yield built
    close_app(built)


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def client(anonymous: TestClient) -> TestClient:
    response = login(anonymous)
    assert response.status_code == 303, response.text
    return anonymous
