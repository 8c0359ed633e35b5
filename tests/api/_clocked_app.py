"""What the API tests on a test-set clock share: an app reading each module's ``clock`` fixture
(a one-element list a test may move) whose people are profiled and personalized unless they opt
out; ``any_hour_clock``, that clock at 03:00 and at 23:00 UTC of ``DAY`` (so the tests pass
whatever the hour); and a person written through the API.

A module imports the fixtures it uses (``from _clocked_app import clocked_app, ...``): they
register as ``settings``, ``app`` and ``clock``."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from _tenant_keys import TenantKeys
from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.api import create_app
from personify.settings import Settings
from personify.storage.registry import Stores

DAY = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture(name="settings")
def opt_out_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, model_dir=str(tmp_path / "models"), demo=False,
                    consent_defaults={"profiling": "opt-out", "personalization": "opt-out"})


@pytest.fixture(name="app")
def clocked_app(settings: Settings, stores: Stores, tenant_a: TenantKeys,
                clock: list[datetime]) -> FastAPI:
    return create_app(settings, stores=stores, clock=lambda: clock[0])


@pytest.fixture(name="clock", params=[time(3, 0), time(23, 0)], ids=["03h", "23h"])
def any_hour_clock(request: pytest.FixtureRequest) -> list[datetime]:
    return [datetime.combine(DAY.date(), request.param, tzinfo=UTC)]


def put_user(client: TestClient, keys: TenantKeys, uid: str, **profile: Any) -> None:
    props = profile.pop("properties", {})
    r = client.put(f"/v1/users/{uid}", json={"profile": profile, "properties": props},
                   headers=keys.headers())
    assert r.status_code in (200, 201), r.text
