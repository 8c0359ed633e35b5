"""Live segments where a user reaches for them: recommendation segment rules (filters and boosts
for members), experiment targeting by live segment (no label sent by the client), and counts
over time (stored snapshots)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _clocked_app import clocked_app, opt_out_settings  # noqa: F401 - fixtures
from fastapi.testclient import TestClient

from personify.api import create_app
from personify.settings import Settings
from personify.storage.registry import Stores

if TYPE_CHECKING:
    from conftest import TenantKeys

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> list[datetime]:
    return [NOW]


def _buy(client: TestClient, keys: TenantKeys, user: str, item: str, n: int, price: float,
         ) -> None:
    events: list[dict[str, Any]] = [
        {"event_id": f"{user}-{item}-{i}", "type": "purchase", "user_id": user, "item_id": item,
         "price": price, "timestamp": (NOW - timedelta(days=2 + 3 * i)).isoformat()}
        for i in range(n)
    ]
    r = client.post("/v1/events/batch", json={"events": events}, headers=keys.headers("ingest"))
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def _setup(client: TestClient, keys: TenantKeys) -> None:
    admin = keys.headers()
    for item, cats, price in [("wine", ["alcohol"], 20.0), ("juice", ["drinks"], 3.0),
                              ("caviar", ["food"], 200.0), ("bread", ["food"], 2.0)]:
        assert client.put(f"/v1/items/{item}", json={"categories": cats, "price": price},
                          headers=admin).status_code in (200, 201)
    assert client.put("/v1/segments/big", headers=admin,
                      json={"text": "monetary >= 500"}).status_code == 200
    _buy(client, keys, "rich", "caviar", 3, 200.0)
    _buy(client, keys, "modest", "bread", 3, 2.0)
    # popularity so every item can be recommended
    for user in ("p1", "p2", "p3"):
        for item in ("wine", "juice", "bread", "caviar"):
            _buy(client, keys, user, item, 1, 1.0)


def test_recommendation_segment_rules_filter_and_boost_for_members(
    client: TestClient, tenant_a: TenantKeys,
) -> None:
    _setup(client, tenant_a)
    serve = tenant_a.headers("serve")
    rules = [{"segments": ["big"], "exclude_categories": ["alcohol"],
              "boosts": [{"condition": {"field": "price", "op": "gte", "value": 100},
                          "factor": 50}]},
             {"segments": ["big"], "negate": True,
              "conditions": [{"field": "price", "op": "lt", "value": 100}]}]
    body: dict[str, Any] = {"n": 4, "segment_rules": rules,
                            "exclude": {"bought": False, "seen_days": None}}

    rich = client.post("/v1/recommendations", json={**body, "user_id": "rich"}, headers=serve)
    assert rich.status_code == 200, rich.text
    rich_ids = [i["item_id"] for i in rich.json()["items"]]
    assert "wine" not in rich_ids and rich_ids and rich_ids[0] == "caviar"

    modest = client.post("/v1/recommendations", json={**body, "user_id": "modest"},
                         headers=serve)
    modest_ids = [i["item_id"] for i in modest.json()["items"]]
    assert "caviar" not in modest_ids and "wine" in modest_ids

    unknown = client.post("/v1/recommendations", headers=serve, json={
        "user_id": "rich", "segment_rules": [{"segments": ["nope"]}]})
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "segments"
    assert "big" in unknown.json()["error"]["accepted"]
    empty = client.post("/v1/recommendations", headers=serve, json={
        "user_id": "rich", "segment_rules": [{"segments": []}]})
    assert empty.status_code == 422


def test_experiment_targets_a_live_segment(
    client: TestClient, tenant_a: TenantKeys,
) -> None:
    _setup(client, tenant_a)
    admin = tenant_a.headers()
    body = {
        "name": "big-only", "layer": "home",
        "variants": [{"name": "control", "payload": {"personalized": False}},
                     {"name": "reco", "payload": {"sources": ["popular"]}}],
        "targeting": {"segments": ["big"]},
        "primary_metric": {"name": "ctr", "kind": "ratio"}, "planned_sample_size": 40,
    }
    assert client.post("/v1/experiments", json=body, headers=admin).status_code == 201
    assert client.post("/v1/experiments/big-only/start", headers=admin).status_code == 200
    serve = tenant_a.headers("serve")
    rich = client.get("/v1/assignments", params={"user_id": "rich"}, headers=serve).json()
    modest = client.get("/v1/assignments", params={"user_id": "modest"}, headers=serve).json()
    assert [a["experiment"] for a in rich["assignments"]] == ["big-only"]
    assert modest["assignments"] == []


def test_counts_over_time_are_stored_and_served(
    settings: Settings, stores: Stores, tenant_a: TenantKeys, tenant_b: TenantKeys,
) -> None:
    now = [NOW]
    app = create_app(settings, stores=stores, clock=lambda: now[0])
    with TestClient(app) as client:
        _setup(client, tenant_a)
        admin = tenant_a.headers()
        first = client.post("/v1/segments/refresh", headers=admin).json()
        assert first["counts"] == {"big": 1}
        now[0] = NOW + timedelta(hours=2)
        _buy(client, tenant_a, "modest", "caviar", 3, 300.0)  # modest enters on ingest: due
        series = client.get("/v1/segments/big/counts", headers=admin).json()["points"]
        # the first evaluation after start, the refresh, then the entry two hours later
        assert [p["members"] for p in series] == [1, 1, 2]
        assert series[2]["at"].startswith((NOW + timedelta(hours=2)).isoformat()[:16])
        later = client.get("/v1/segments/big/counts", headers=admin,
                           params={"since": (NOW + timedelta(hours=1)).isoformat()}).json()
        assert [p["members"] for p in later["points"]] == [2]
        naive = client.get("/v1/segments/big/counts", headers=admin,
                           params={"since": "2026-03-01T00:00:00"})
        assert naive.status_code == 422 and naive.json()["error"]["field"] == "since"
        assert client.get("/v1/segments/nope/counts", headers=admin).status_code == 404
        assert client.get("/v1/segments/big/counts",
                          headers=tenant_a.headers("serve")).status_code == 403
        assert client.get("/v1/segments/big/counts",
                          headers=tenant_b.headers()).status_code == 404


INSIGHT_TEMPLATE = """
name: tailored
variants:
  - language: en
    subject: "{{ person.insights.top_interest or 'Something' }} for you"
    text: |
      {% if person.insights.sentiment_last == "negative" %}We are sorry.{% else %}Hello!{% endif %}
      tier={{ person.insights.rfm_tier }} stage={{ person.insights.lifecycle }}
      segments={{ person.insights.segments|join(",") }} status={{ person.insights.status }}
"""


def test_insights_are_template_variables(client: TestClient, tenant_a: TenantKeys) -> None:
    from personify.insights.service import template_variables
    from personify.messaging.templates import INSIGHT_VARIABLES

    _setup(client, tenant_a)
    admin = tenant_a.headers()
    for user in ("rich", "modest"):
        assert client.put(f"/v1/users/{user}", json={"profile": {"name": user}},
                          headers=admin).status_code == 200
    put = client.put("/v1/messaging/templates/tailored", content=INSIGHT_TEMPLATE.encode(),
                     headers={**admin, "Content-Type": "application/yaml"})
    assert put.status_code == 200, put.text
    answer = client.post("/v1/messaging/templates/tailored/preview", json={"user_id": "rich"},
                         headers=admin)
    assert answer.status_code == 200, answer.text
    rich = answer.json()
    assert rich["subject"] == "food for you"
    assert "Hello!" in rich["text"] and "segments=big" in rich["text"]
    assert "stage=active" in rich["text"] and "status=ok" in rich["text"]
    review = {"event_id": "rich-complaint", "type": "review", "user_id": "rich",
              "text": "Terrible service, awful, the worst order I ever had. Never again.",
              "timestamp": (NOW - timedelta(hours=1)).isoformat()}
    assert client.post("/v1/events", json=review,
                       headers=tenant_a.headers("ingest")).status_code == 200
    sorry = client.post("/v1/messaging/templates/tailored/preview", json={"user_id": "rich"},
                        headers=admin).json()
    assert "We are sorry." in sorry["text"]
    # without profiling permission nothing is computed: the variables say so
    assert client.post("/v1/users/modest/consents", json={"purpose": "profiling",
                       "state": "denied"}, headers=admin).status_code == 201
    modest = client.post("/v1/messaging/templates/tailored/preview",
                         json={"user_id": "modest"}, headers=admin).json()
    assert modest["subject"] == "Something for you" and "status=not_allowed" in modest["text"]
    assert "segments= " in modest["text"]
    # every documented name is what the insights provide
    from personify.insights.service import Insights
    empty = Insights(user_id="x", computed_at=NOW, status="ok")
    assert set(template_variables(empty)) == set(INSIGHT_VARIABLES)


def test_marketing_is_held_back_after_a_complaint(
    database_url: str, tmp_path: Path, stores: Stores, tenant_a: TenantKeys,
    tenant_b: TenantKeys,
) -> None:
    off = Settings(database_url=database_url, model_dir=str(tmp_path / "off"), demo=False)
    assert create_app(off, stores=stores, clock=lambda: NOW).state.runtime.messaging.worker \
        .hold_back is None  # off by default
    now = [NOW]
    settings = Settings(database_url=database_url, model_dir=str(tmp_path / "models"),
                        demo=False, complaint_holdback_days=7,
                        consent_defaults={"profiling": "opt-out"})
    app = create_app(settings, stores=stores, clock=lambda: now[0])
    hold = app.state.runtime.messaging.worker.hold_back
    assert hold is not None
    with TestClient(app) as client:
        texts = [("ann", "Terrible service, awful support, I want my money back. Never again."),
                 ("bob", "Lovely shoes, great quality, thank you so much!")]
        for n, (user, text) in enumerate(texts):
            review = {"event_id": f"r{n}", "type": "review", "user_id": user, "text": text,
                      "timestamp": (NOW - timedelta(days=1)).isoformat()}
            assert client.post("/v1/events", json=review,
                               headers=tenant_a.headers("ingest")).status_code == 200
        reason = hold("default", "ann")
        assert reason is not None and "complaint" in reason
        assert hold("default", "bob") is None and hold("default", "nobody") is None
        now[0] = NOW + timedelta(days=7)  # the hold ends 7 days after the complaint
        client.post("/v1/events", headers=tenant_a.headers("ingest"), json={
            "event_id": "v1", "type": "view", "user_id": "ann", "item_id": "x",
            "timestamp": now[0].isoformat()})
        assert hold("default", "ann") is None


def test_after_complaint_journey_sends_a_service_message(
    client: TestClient, tenant_a: TenantKeys,
) -> None:
    admin = tenant_a.headers()
    assert client.put("/v1/users/ann", json={"profile": {"name": "Ann",
                      "email": "ann@example.org"}}, headers=admin).status_code == 200
    assert client.put("/v1/segments/complained", headers=admin,
                      json={"text": 'sentiment.last = "negative"'}).status_code == 200
    assert client.post("/v1/messaging/journeys/after_complaint/enable",
                       headers=admin).status_code == 200
    assert client.get("/v1/users/ann/insights", headers=admin).json()["segments"] == []
    review = {"event_id": "c1", "type": "review", "user_id": "ann",
              "text": "Terrible service, awful, the worst order I ever had. Never again.",
              "timestamp": (NOW - timedelta(hours=1)).isoformat()}
    assert client.post("/v1/events", json=review,
                       headers=tenant_a.headers("ingest")).status_code == 200
    after = client.get("/v1/users/ann/insights", headers=admin).json()
    assert [s["segment_id"] for s in after["segments"]] == ["complained"], after["text"]
    run = client.get("/v1/messaging/journeys/after_complaint/runs/ann", headers=admin)
    assert run.status_code == 200, run.text
    body = run.json()
    assert body["status"] == "completed" and len(body["messages"]) == 1, body
    # someone who wrote nothing negative is not in the segment (no journey for them)
    assert client.put("/v1/users/bob", json={"profile": {"name": "Bob"}},
                      headers=admin).status_code == 200
    assert client.get("/v1/users/bob/insights", headers=admin).json()["segments"] == []
