"""``/metrics`` (Prometheus, key scope ``metrics``), the request id and the access log line,
``/ready``'s checks: scraped and parsed like Prometheus does (``prometheus_client.parser``)."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _tenant_keys import TenantKeys
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from personify.domain.keys import Scope
from personify.jobs.training import TrainingConfig, train_tenant
from personify.runtime.logs import JsonFormatter
from personify.storage.registry import Stores

NOW = datetime.now(UTC)


def _metrics_key(stores: Stores) -> dict[str, str]:
    _, secret = stores.keys.create("default", "prometheus", [Scope.METRICS])
    return {"Authorization": f"Bearer {secret}"}


def _scrape(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    return {"families": families, "text": response.text}


def _value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    total = 0.0
    for s in families[family].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            total += s.value
    return total


def test_metrics_need_the_metrics_scope(client: TestClient, tenant_a: TenantKeys,
                                        stores: Stores) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=tenant_a.headers("serve")).status_code == 403
    assert client.get("/metrics", headers=tenant_a.headers("ingest")).status_code == 403
    metrics_only = _metrics_key(stores)
    assert client.get("/metrics", headers=metrics_only).status_code == 200
    assert client.get("/metrics", headers=tenant_a.headers("admin")).status_code == 200
    # the metrics key reads nothing else
    assert client.get("/v1/users/u1", headers=metrics_only).status_code == 403


def test_scraped_metrics_count_requests_events_and_follow_the_naming_rules(
    client: TestClient, tenant_a: TenantKeys, stores: Stores
) -> None:
    ingest = tenant_a.headers("ingest")
    for purpose in ("personalization", "profiling"):
        client.post(f"/v1/users/zora-secret-id/consents/{purpose}:grant", json={},
                    headers=tenant_a.headers("admin"))
    event = {"event_id": "m1", "type": "view", "user_id": "zora-secret-id", "item_id": "i1",
             "timestamp": (NOW - timedelta(minutes=1)).isoformat()}
    bad = {"event_id": "m2", "type": "no-such-type", "user_id": "u2", "item_id": "i1",
           "timestamp": NOW.isoformat()}
    r = client.post("/v1/events/batch", json={"events": [event, event | {"event_id": "m3"}, bad]},
                    headers=ingest)
    assert r.status_code == 207, r.text  # two stored, one rejected
    client.post("/v1/events/batch", json={"events": [event]}, headers=ingest)  # a duplicate
    assert client.get("/v1/users/zora-secret-id", headers=tenant_a.headers("admin")).status_code \
        in (200, 404)
    assert client.post("/v1/recommendations", json={"user_id": "zora-secret-id"},
                       headers=tenant_a.headers("serve")).status_code == 200
    scraped = _scrape(client, _metrics_key(stores))
    families, text = scraped["families"], scraped["text"]

    assert _value(families, "personify_events_ingested", "personify_events_ingested_total",
                  type="view") == 2
    assert _value(families, "personify_events_duplicate",
                  "personify_events_duplicate_total") == 1
    assert _value(families, "personify_events_rejected", "personify_events_rejected_total",
                  reason="invalid_input") == 1
    latency = "personify_http_request_duration_seconds"
    assert _value(families, latency, f"{latency}_count", route="/v1/recommendations",
                  method="POST", status="200") == 1
    assert _value(families, latency, f"{latency}_count", route="/v1/users/{user_id}",
                  method="GET") == 1
    assert _value(families, "personify_online_state_lag_seconds",
                  "personify_online_state_lag_seconds_count") >= 1
    assert _value(families, "personify_online_state_people",
                  "personify_online_state_people") >= 1
    assert _value(families, "personify_online_state_fallback",
                  "personify_online_state_fallback") == 0
    assert "personify_outbox_messages" in families
    assert "process_cpu_seconds" in families  # CPU per process: the cost per request
    # route templates, never raw paths: a person's id never becomes a label value
    assert "zora-secret-id" not in text
    for name, family in families.items():
        if name.startswith(("process_", "python_")):
            continue
        assert name.startswith("personify_"), name
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), name
        if {"duration", "lag", "age"} & set(name.split("_")):
            assert name.endswith("_seconds"), name


def _wait_ready(client: TestClient) -> dict[str, Any]:
    """``/ready``'s body once the warm-up is over (it is 503 ``starting`` while it runs)."""
    deadline = time.monotonic() + 20
    while True:
        response = client.get("/ready")
        if response.status_code != 503 or time.monotonic() > deadline:
            body: dict[str, Any] = response.json()
            return body
        time.sleep(0.05)


def _train(app: FastAPI) -> str:
    runtime = app.state.runtime
    manifest = train_tenant(runtime.stores.events, runtime.engine.models, "default",
                            TrainingConfig(learn_blend=False), catalog=runtime.stores.catalog,
                            users=runtime.stores.users)
    runtime.engine.bundles.refresh()
    runtime.engine.bundles.get("default")
    return manifest.version


def test_model_version_age_and_ready(
    tenant_a: TenantKeys, stores: Stores, tmp_path: Path
) -> None:
    from personify.api import create_app
    from personify.settings import Settings

    app = create_app(Settings(database_url="memory://", model_dir=str(tmp_path)), stores=stores)
    with TestClient(app) as client:
        _model_version_age_and_ready(app, client, tenant_a, stores)


def _model_version_age_and_ready(
    app: FastAPI, client: TestClient, tenant_a: TenantKeys, stores: Stores
) -> None:
    assert _wait_ready(client)["status"] == "ready"
    body = client.get("/ready").json()
    assert body["checks"]["model"].startswith("none promoted")
    events = [
        {"event_id": f"t{u}-{j}", "type": "purchase", "user_id": f"u{u}",
         "item_id": f"i{(u + j) % 7}",
         "timestamp": (NOW - timedelta(days=2, minutes=u * 10 + j)).isoformat()}
        for u in range(12) for j in range(4)
    ]
    assert client.post("/v1/events/batch", json={"events": events},
                       headers=tenant_a.headers("ingest")).status_code == 200
    version = _train(app)
    body = client.get("/ready").json()
    assert body["status"] == "ready" and body["checks"]["model"] == f"serving {version}", body
    assert body["checks"]["warm_up"] == "done"
    families = _scrape(client, _metrics_key(stores))["families"]
    assert _value(families, "personify_model_info", "personify_model_info", tenant="default",
                  version=version) == 1
    age = _value(families, "personify_model_age_seconds", "personify_model_age_seconds",
                 tenant="default")
    assert 0 <= age < 600
    assert _value(families, "personify_model_swaps", "personify_model_swaps_total",
                  tenant="default") >= 1


def test_request_id_is_echoed_or_made_and_logged_once_per_request(
    client: TestClient, tenant_a: TenantKeys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="personify.access")
    given = client.get("/health", headers={"X-Request-Id": "lb-7f3a.1:2"})
    assert given.headers["x-request-id"] == "lb-7f3a.1:2"
    made = client.post("/v1/recommendations", json={"user_id": "quinn-77"},
                       headers=tenant_a.headers("serve"))
    assert len(made.headers["x-request-id"]) == 32
    for insane in ("x" * 200, "a b", "<script>", "id;drop", "\u00e4".encode()):
        answered = client.get("/health", headers={"X-Request-Id": insane})
        assert answered.headers["x-request-id"] not in (insane, "\u00e4")
        assert len(answered.headers["x-request-id"]) == 32
    other = client.post("/v1/recommendations", json={"user_id": "quinn-77"},
                        headers=tenant_a.headers("serve"))
    assert other.headers["x-request-id"] != made.headers["x-request-id"]
    lines = [r for r in caplog.records if r.name == "personify.access"
             and getattr(r, "request_id", None) == made.headers["x-request-id"]]
    assert len(lines) == 1
    parsed = json.loads(JsonFormatter().format(lines[0]))
    assert parsed["request_id"] == made.headers["x-request-id"]
    assert parsed["route"] == "/v1/recommendations" and parsed["status"] == 200
    assert parsed["method"] == "POST" and parsed["duration_ms"] >= 0
    assert "quinn-77" not in json.dumps(parsed)


def test_rate_limit_rejections_are_counted(stores: Stores, tenant_a: TenantKeys) -> None:
    from personify.api import create_app
    from personify.settings import Settings

    app = create_app(Settings(database_url="memory://", rate_limit_per_minute=2), stores=stores)
    metrics_key = _metrics_key(stores)
    with TestClient(app) as client:
        codes = [client.post("/v1/recommendations", json={"user_id": "u1"},
                             headers=tenant_a.headers("serve")).status_code for _ in range(4)]
        assert 429 in codes
        families = _scrape(client, metrics_key)["families"]
    assert _value(families, "personify_rate_limit_rejections",
                  "personify_rate_limit_rejections_total", limit="key") == codes.count(429)
