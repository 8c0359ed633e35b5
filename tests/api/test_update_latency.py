"""The recommendation update latency KPI end to end: an event acknowledged by ``/v1/events``,
the next personalized ``/v1/recommendations`` for that visitor, the sample stamped on the
impression, and its percentiles in ``/v1/kpis`` (per day, channel and variant) and in
``personify kpis``. The bounds come from the test's own clock around the real calls."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from personify.cli.main import app as cli

if TYPE_CHECKING:
    from conftest import TenantKeys


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kpis.db'}"


def _setup(client: TestClient, keys: TenantKeys, users: list[str]) -> None:
    for i in range(12):
        got = client.put(f"/v1/items/i{i}", json={"title": f"item {i}"}, headers=keys.headers())
        assert got.status_code == 200, got.text
    for user in users:
        for purpose in ("personalization", "profiling"):
            got = client.post(
                f"/v1/users/{user}/consents",
                headers=keys.headers(),
                json={"purpose": purpose, "state": "granted", "text_version": "v1"},
            )
            assert got.status_code == 201, got.text


_n = iter(range(10_000))


def _event(client: TestClient, keys: TenantKeys, user: str, item: str = "i1") -> float:
    """Post a view; returns the wall time just after the acknowledgement arrived."""
    body = {"event_id": f"e{next(_n)}", "type": "view", "user_id": user, "item_id": item,
            "timestamp": datetime.now(UTC).isoformat()}
    got = client.post("/v1/events", json=body, headers=keys.headers("ingest"))
    assert got.status_code == 200, got.text
    return time.time()


def _recommend(
    client: TestClient, keys: TenantKeys, user: str, channel: str = "web"
) -> tuple[float, float, dict[str, Any]]:
    before = time.time()
    got = client.get(
        "/v1/recommendations",
        params={"user_id": user, "n": 4, "channel": channel},
        headers=keys.headers("serve"),
    )
    after = time.time()
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["items"] and body["personalized"] is True
    return before, after, body


def _kpis(client: TestClient, keys: TenantKeys, **params: str) -> dict[str, Any]:
    got = client.get("/v1/kpis", params=params, headers=keys.headers())
    assert got.status_code == 200, got.text
    return dict(got.json())


def test_latency_from_acknowledged_event_to_the_next_served_recommendation(
    app: FastAPI, client: TestClient, tenant_a: TenantKeys, database_url: str
) -> None:
    users = ["u1", "u2", "u3"]
    _setup(client, tenant_a, users)
    _recommend(client, tenant_a, "u1")  # before any event: no sample
    bounds: list[tuple[float, float]] = []
    for user, pause, channel in (("u1", 0.30, "web"), ("u2", 0.05, "app"), ("u3", 0.15, "web")):
        acked = _event(client, tenant_a, user)
        time.sleep(pause)
        before, after, _ = _recommend(client, tenant_a, user, channel)
        # the sample lies between (served - acknowledged) as seen from outside the server
        bounds.append(((before - acked) * 1000, (after - acked + 0.2) * 1000))
        _recommend(client, tenant_a, user, channel)  # the second one after the event: no sample
    acked = _event(client, tenant_a, "u1", "i2")
    acked = _event(client, tenant_a, "u1", "i3")  # the latest event counts
    time.sleep(0.1)
    before, after, _ = _recommend(client, tenant_a, "u1")
    bounds.append(((before - acked) * 1000, (after - acked + 0.2) * 1000))
    app.state.runtime.engine.impressions.flush()

    total = _kpis(client, tenant_a, group_by="channel")["total"]
    assert total["update_latency_samples"] == 4
    lows = np.array([lo for lo, _ in bounds])
    highs = np.array([hi for _, hi in bounds])
    for q, key in ((50, "update_latency_p50_ms"), (95, "update_latency_p95_ms"),
                   (99, "update_latency_p99_ms")):
        assert np.percentile(lows, q) <= total[key] <= np.percentile(highs, q), key
    assert total["update_latency_p50_ms"] >= 100  # the pauses are real
    by_channel = _kpis(client, tenant_a, group_by="channel")["groups"]
    assert by_channel["app"]["update_latency_samples"] == 1
    assert bounds[1][0] <= by_channel["app"]["update_latency_p50_ms"] <= bounds[1][1]
    assert by_channel["web"]["update_latency_samples"] == 3
    today = datetime.now(UTC).date().isoformat()
    assert _kpis(client, tenant_a)["groups"][today]["update_latency_samples"] == 4

    # the same figures from the command line, on the same database
    result = CliRunner().invoke(
        cli, ["--database-url", database_url, "kpis", "--group-by", "channel", "--json"]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["total"]["update_latency_samples"] == 4
    assert printed["total"]["update_latency_p95_ms"] == total["update_latency_p95_ms"]
    table = CliRunner().invoke(cli, ["--database-url", database_url, "kpis", "--group-by", "day"])
    assert table.exit_code == 0 and "p95 ms" in table.output
    bad = CliRunner().invoke(cli, ["--database-url", database_url, "kpis", "--group-by", "week"])
    assert bad.exit_code != 0 and "group_by" in bad.output


def test_latency_per_variant(client: TestClient, tenant_a: TenantKeys, app: FastAPI) -> None:
    users = [f"w{i}" for i in range(12)]
    _setup(client, tenant_a, users)
    definition = {
        "name": "fresh-blocks",
        "variants": [{"name": "control", "payload": {"mmr_lambda": 0.9}},
                     {"name": "diverse", "payload": {"mmr_lambda": 0.3}}],
        "primary_metric": {"name": "ctr", "kind": "ratio"},
        "sequential": True,
    }
    assert client.post("/v1/experiments", json=definition,
                       headers=tenant_a.headers()).status_code == 201
    assert client.post("/v1/experiments/fresh-blocks/start",
                       headers=tenant_a.headers()).status_code == 200
    variants: dict[str, int] = {}
    for user in users:
        _event(client, tenant_a, user)
        _recommend(client, tenant_a, user)
        assigned = client.get("/v1/assignments", params={"user_id": user},
                              headers=tenant_a.headers("serve")).json()["assignments"]
        variant = assigned[0]["variant"]
        variants[variant] = variants.get(variant, 0) + 1
    app.state.runtime.engine.impressions.flush()
    got = _kpis(client, tenant_a, group_by="variant", experiment="fresh-blocks")
    assert {v: g["update_latency_samples"] for v, g in got["groups"].items()} == variants
    assert all(g["update_latency_p99_ms"] > 0 for g in got["groups"].values())
