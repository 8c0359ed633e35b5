"""GET /v1/users/{id}/insights through the API: profile from ingested events, batch fit, consent,
export and erasure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from _clocked_app import clocked_app, opt_out_settings  # noqa: F401 - fixtures
from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.insights.population import PersonScores, PopulationFiles
from personify.jobs.insights import fit_insights
from personify.settings import Settings
from personify.storage.registry import Stores

if TYPE_CHECKING:
    from conftest import TenantKeys

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> list[datetime]:
    return [NOW]


def _purchases(
    client: TestClient, keys: TenantKeys, user: str, days: list[int], tag: str = ""
) -> None:
    events: list[dict[str, Any]] = [
        {"event_id": f"{user}-{tag}{i}", "type": "purchase", "user_id": user, "item_id": "shoe",
         "price": 50.0, "timestamp": (NOW - timedelta(days=d)).isoformat()}
        for i, d in enumerate(days)
    ]
    r = client.post("/v1/events/batch", json={"events": events}, headers=keys.headers("ingest"))
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def test_insights_profile_predictions_export_and_erasure(
    client: TestClient, tenant_a: TenantKeys, tenant_b: TenantKeys, stores: Stores,
    settings: Settings,
) -> None:
    client.put("/v1/items/shoe", json={"categories": ["shoes"], "price": 50.0},
               headers=tenant_a.headers())
    for c in range(30):
        _purchases(client, tenant_a, f"c{c}", [200 - c, 150 - c, 60 - c][: c % 3 + 1])
    before = client.get("/v1/users/c5/insights", headers=tenant_a.headers()).json()
    assert before["status"] == "ok"
    assert before["profile"]["affinities"]["categories"][0]["key"] == "shoes"
    assert before["profile"]["rfm"]["r"] is None  # no batch fit yet: says so
    assert "insights fit" in before["predictions"]["customer_base"]["reason"]["en"]

    fit_insights(stores, settings.model_dir, "default", as_of=NOW, clock=lambda: NOW)
    files = PopulationFiles(settings.model_dir)
    population = files.load("default")
    assert population is not None and population.customers == 30
    population.scores["c5"] = PersonScores(churn=0.2, propensity=0.4,
                                           churn_reasons=[{"feature": "recency_days"}])
    files.save(population)
    after = client.get("/v1/users/c5/insights", headers=tenant_a.headers()).json()
    assert after["profile"]["rfm"]["tier"] is not None
    base = after["predictions"]["customer_base"]
    assert 0 < base["probability_alive"] <= 1 and base["expected_purchases_90d"] > 0
    assert after["predictions"]["churn_90d"]["probability"] == 0.2
    assert "recency_days" in after["predictions"]["churn_90d"]["reason"]["ru"]

    # a new purchase is seen on the next read (the listener drops the cached profile)
    _purchases(client, tenant_a, "c5", [0], tag="new")
    again = client.get("/v1/users/c5/insights", headers=tenant_a.headers()).json()
    assert again["profile"]["rfm"]["frequency"] == after["profile"]["rfm"]["frequency"] + 1

    # tenant isolation: the other tenant does not see c5
    assert client.get("/v1/users/c5/insights", headers=tenant_b.headers()).status_code == 404
    assert client.get("/v1/users/c5/insights", headers=tenant_a.headers("serve")).status_code == 403

    export = client.get("/v1/users/c5/export", headers=tenant_a.headers()).json()
    assert export["insights"]["profile"]["rfm"]["frequency"] == again["profile"]["rfm"]["frequency"]

    assert client.delete("/v1/users/c5", headers=tenant_a.headers()).status_code == 200
    reloaded = files.load("default")
    assert reloaded is not None and "c5" not in reloaded.scores
    gone = client.get("/v1/users/c5/insights", headers=tenant_a.headers())
    assert gone.status_code == 410


def test_without_profiling_consent_nothing_is_computed(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    _purchases(client, tenant_a, "p1", [3, 2])
    r = client.post("/v1/users/p1/consents/profiling:deny", json={},
                    headers=tenant_a.headers())
    assert r.status_code == 201, r.text
    out = client.get("/v1/users/p1/insights", headers=tenant_a.headers()).json()
    assert out["status"] == "not_allowed" and out["profile"] is None
    assert "consent" in out["reason"]["en"]


def test_unknown_person_is_not_found(client: TestClient, tenant_a: TenantKeys) -> None:
    r = client.get("/v1/users/nobody/insights", headers=tenant_a.headers())
    assert r.status_code == 404 and r.json()["error"]["field"] == "user_id"


def test_segments_crud_live_membership_and_journey_on_entry(
    client: TestClient, tenant_a: TenantKeys, tenant_b: TenantKeys, app: FastAPI
) -> None:
    admin = tenant_a.headers()
    client.put("/v1/users/ann", json={"profile": {"name": "Ann", "email": "ann@example.org"}},
               headers=admin)
    client.put("/v1/items/shoe", json={"categories": ["shoes"], "price": 50.0}, headers=admin)
    bad = client.put("/v1/segments/vip", json={"text": "monetary >"}, headers=admin)
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["field"] == "rule" and "position 10" in error["message"]
    unknown = client.put("/v1/segments/vip", json={"text": "spend > 1"}, headers=admin)
    assert unknown.status_code == 422 and "monetary" in unknown.json()["error"]["accepted"]
    put = client.put("/v1/segments/vip", headers=admin, json={
        "name": "VIP", "text": "monetary >= 100 and frequency >= 2"})
    assert put.status_code == 200 and put.json()["rule"]["and"][0]["field"] == "monetary"
    assert client.put("/v1/segments/vip", json={"text": "monetary > 1"},
                      headers=tenant_a.headers("ingest")).status_code == 403
    assert client.post("/v1/messaging/journeys/entered_segment_vip/enable",
                       headers=admin).status_code == 200
    client.post("/v1/users/ann/consents", json={"purpose": "email_marketing",
                                                "state": "granted"}, headers=admin)

    _purchases(client, tenant_a, "ann", [40])  # the first evaluation: the baseline, outside
    first = client.get("/v1/users/ann/insights", headers=admin).json()
    assert first["segments"] == []
    _purchases(client, tenant_a, "ann", [10], tag="b")  # 100 spent on 2 days: enters on ingest
    assert client.get("/v1/segments/vip/members", headers=admin).json()["user_ids"] == ["ann"]
    run = client.get("/v1/messaging/journeys/entered_segment_vip/runs/ann", headers=admin)
    assert run.status_code == 200, run.text
    inside = client.get("/v1/users/ann/insights", headers=admin).json()["segments"]
    assert [s["segment_id"] for s in inside] == ["vip"] and "monetary" in inside[0]["reason"]["en"]
    listed = client.get("/v1/segments", headers=admin).json()
    assert listed["segments"][0]["members"] == 1 and "churn_risk" in listed["fields"]
    assert client.get("/v1/segments", headers=tenant_b.headers()).json()["segments"] == []
    refreshed = client.post("/v1/segments/refresh", headers=admin).json()
    assert refreshed["people"] == 1 and refreshed["counts"] == {"vip": 1}

    # a campaign to the segment reaches its members only
    client.put("/v1/users/bob", json={"profile": {"name": "Bob"}}, headers=admin)
    client.post("/v1/users/bob/consents", json={"purpose": "email_marketing",
                                                "state": "granted"}, headers=admin)
    note = {"channel": "email", "recommendations": 0,
            "variants": [{"subject": "Hi {{ user.name }}", "text": "Thanks"}]}
    assert client.put("/v1/messaging/templates/vip_note", json=note,
                      headers=admin).status_code == 200
    campaign = {"name": "vips", "template": "vip_note", "segment": "vip",
                "send_at": "2026-03-01T00:00:00Z"}
    sent = client.post("/v1/messaging/campaigns", json=campaign, headers=admin)
    assert sent.status_code == 200 and sent.json()["enqueued"] == 1, sent.text
    missing = client.post("/v1/messaging/campaigns", headers=admin,
                          json={**campaign, "name": "nobody", "segment": "nope"})
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "segment"
    everyone = {k: v for k, v in campaign.items() if k != "segment"} | {"name": "all"}
    assert client.post("/v1/messaging/campaigns", json=everyone,
                       headers=admin).json()["enqueued"] == 2

    assert client.put("/v1/segments/loyal_vip", json={"text": 'segment("vip") and rfm.r >= 1'},
                      headers=admin).status_code == 200
    cycle = client.put("/v1/segments/vip", json={"text": 'segment("loyal_vip")'}, headers=admin)
    assert cycle.status_code == 422 and "cycle" in cycle.json()["error"]["message"]
    assert client.delete("/v1/segments/vip", headers=admin).status_code == 409  # still used
    assert client.delete("/v1/segments/loyal_vip", headers=admin).status_code == 204
    assert client.get("/v1/segments/loyal_vip", headers=admin).status_code == 404

    assert client.delete("/v1/users/ann", headers=admin).status_code == 200
    assert client.get("/v1/segments/vip/members", headers=admin).json()["user_ids"] == []


def test_text_insights_segment_export_and_erasure(
    client: TestClient, tenant_a: TenantKeys, stores: Stores, app: FastAPI,
) -> None:
    admin = tenant_a.headers()
    texts = [
        ("Курьер опоздал на три дня, коробка помята, ужасный сервис!", 3),
        ("Опять сломанный товар. Очень зла, верните деньги.", 2),
        ("The courier was late again, terrible service, I am angry.", 1),
    ]
    events = [{"event_id": f"w{i}", "type": "review", "user_id": "wri", "text": text,
               "timestamp": (NOW - timedelta(days=d)).isoformat()}
              for i, (text, d) in enumerate(texts)]
    events.append({"event_id": "h0", "type": "comment", "user_id": "happy",
                   "text": "Thank you so much, I love it, wonderful quality!",
                   "timestamp": NOW.isoformat()})
    r = client.post("/v1/events/batch", json={"events": events}, headers=tenant_a.headers("ingest"))
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    bad = client.put("/v1/segments/unhappy", headers=admin,
                     json={"text": 'sentiment.negative_share > "lots"'})
    assert bad.status_code == 422 and bad.json()["error"]["field"].startswith("rule")
    put = client.put("/v1/segments/unhappy", headers=admin, json={
        "name": "Unhappy", "text": 'sentiment.negative_share > 0.5 and language = "ru"'})
    assert put.status_code == 200, put.text
    assert "sentiment.negative_share" in client.get("/v1/segments", headers=admin).json()["fields"]

    out = client.get("/v1/users/wri/insights", headers=admin).json()
    text = out["text"]
    assert text["texts"] == 3 and text["language"] == "ru"
    assert text["sentiment"]["negative_share"] > 0.5 and text["sentiment"]["last"] == "negative"
    assert "курьер" in {k["keyword"] for k in text["keywords"]}
    assert text["reason"]["ru"] and "GoEmotions" in text["attribution"]
    assert [s["segment_id"] for s in out["segments"]] == ["unhappy"]
    happy = client.get("/v1/users/happy/insights", headers=admin).json()
    assert happy["text"]["sentiment"]["last"] == "positive" and happy["segments"] == []
    refreshed = client.post("/v1/segments/refresh", headers=admin).json()
    assert refreshed["counts"] == {"unhappy": 1}

    export = client.get("/v1/users/wri/export", headers=admin).json()
    assert export["insights"]["text"]["keywords"] == text["keywords"]

    insights = app.state.runtime.insights
    assert ("default", "wri") in insights._cache
    assert client.delete("/v1/users/wri", headers=admin).status_code == 200
    assert ("default", "wri") not in insights._cache  # the computed text insights are gone
    assert stores.events.for_user("default", "wri", limit=10) == []  # and the texts
    assert client.get("/v1/users/wri/insights", headers=admin).status_code == 410
    assert client.get("/v1/segments/unhappy/members", headers=admin).json()["user_ids"] == []


def test_item_insights_through_the_api(client: TestClient, tenant_a: TenantKeys,
                                       tenant_b: TenantKeys) -> None:
    for k, title in enumerate(["Green tea leaves", "Black tea blend", "Oolong tea"]):
        client.put(f"/v1/items/t{k}", json={"title": title, "categories": ["tea"]},
                   headers=tenant_a.headers())
    client.put("/v1/items/x", json={"title": "Smoky lapsang tea, loose leaves"},
               headers=tenant_a.headers())
    r = client.get("/v1/items/x/insights", headers=tenant_a.headers("serve"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["language"] == "en" and body["topics"][0]["label"] == "tea"
    assert body["reason"]["en"] and body["reason"]["ru"]
    missing = client.get("/v1/items/x/insights", headers=tenant_b.headers("serve"))
    assert missing.status_code == 404 and "item_id" in missing.text
    assert client.get("/v1/items/x/insights").status_code == 401
