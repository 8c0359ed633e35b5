"""What the introduction tests share: an app on a test-set clock (each module's ``clock`` fixture)
whose people are personalizable unless they opt out, and a person written through the API."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from _tenant_keys import TenantKeys
from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.api import create_app
from personify.settings import Settings
from personify.storage.registry import Stores


@pytest.fixture(name="settings")
def network_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, model_dir=str(tmp_path / "models"), demo=False,
                    consent_defaults={"profiling": "opt-out", "personalization": "opt-out"})


@pytest.fixture(name="app")
def network_app(settings: Settings, stores: Stores, tenant_a: TenantKeys,
        clock: list[datetime]) -> FastAPI:
    return create_app(settings, stores=stores, clock=lambda: clock[0])


def put_user(client: TestClient, keys: TenantKeys, uid: str, **profile: Any) -> None:
    props = profile.pop("properties", {})
    r = client.put(f"/v1/users/{uid}", json={"profile": profile, "properties": props},
                   headers=keys.headers())
    assert r.status_code in (200, 201), r.text
