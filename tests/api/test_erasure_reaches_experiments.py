"""Regression: erasing a person also removes their experiment exposures and assignment alias
(GDPR erasure must reach every capability's data, not only events and profile)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.experiments.ports import ExposureRecord

if TYPE_CHECKING:
    from conftest import TenantKeys


def test_erasure_removes_exposures_and_aliases(
    client: TestClient, app: FastAPI, tenant_a: TenantKeys
) -> None:
    runtime = app.state.experiments
    now = datetime.now(UTC)
    runtime.aliases.set("default", "ana", "anon:visit-1")
    for unit in ("anon:visit-1", "user:bob"):
        assert runtime.exposures.record("default", ExposureRecord("exp", "a", unit, now))
    assert (
        client.put(
            "/v1/users/ana", json={"profile": {"name": "Ana"}}, headers=tenant_a.headers()
        ).status_code
        == 200
    )
    r = client.delete("/v1/users/ana", headers=tenant_a.headers())
    assert r.status_code == 200, r.text
    units = [e.unit for e in runtime.exposures.exposures("default", "exp")]
    assert units == ["user:bob"], "only the other person's exposure remains"
    assert runtime.aliases.get("default", "ana") is None
