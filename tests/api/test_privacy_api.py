"""Privacy endpoints through the API: scopes per route, consent enforced on the very next call,
exports that hold one person only, erasure receipts, explanations, "not interested", audit."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from personify.settings import Settings

if TYPE_CHECKING:
    from conftest import TenantKeys

NOW = datetime.now(UTC)

# (method, path, body, the least scope that may call it)
ROUTES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    # ingest keys need a person token for these (test_public_key_trust.py)
    ("POST", "/v1/users/u1/consents/personalization:grant", {}, "admin"),
    ("POST", "/v1/users/u1/not-interested", {"item_id": "i1"}, "admin"),
    ("GET", "/v1/recommendations/nope/explain", None, "serve"),
    ("GET", "/v1/users/u1/consent-decisions", None, "admin"),
    ("GET", "/v1/users/u1/export", None, "admin"),
    ("GET", "/v1/users/u1/preferences", None, "admin"),
    ("PUT", "/v1/users/u1/preferences", {"declared_interests": ["jazz"]}, "admin"),
    ("DELETE", "/v1/anonymous/a1", None, "admin"),
    ("POST", "/v1/users:erase", {"user_ids": ["zz"]}, "admin"),
    ("GET", "/v1/privacy/audit", None, "admin"),
    ("POST", "/v1/privacy/retention:purge?audit_days=30", None, "admin"),
]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, model_dir=str(tmp_path / "models"), demo=False,
                    retention_days={"impression": 30})


def _seed(client: TestClient, keys: TenantKeys) -> None:
    h = keys.headers("admin")
    for i in range(12):
        body = {"title": f"item {i}", "categories": ["shoes" if i < 6 else "books"]}
        assert client.put(f"/v1/items/i{i}", json=body, headers=h).status_code == 200


def _consent(client: TestClient, keys: TenantKeys, user: str, purpose: str, action: str) -> None:
    r = client.post(f"/v1/users/{user}/consents/{purpose}:{action}", headers=keys.headers("admin"),
                    json={"text_version": "2025-01", "source": "banner"})
    assert r.status_code == 201, r.text


def _view(client: TestClient, keys: TenantKeys, user: str, item: str, n: int) -> None:
    event = {"event_id": f"{user}-{item}-{n}", "type": "view", "user_id": user, "item_id": item,
             "timestamp": (NOW - timedelta(minutes=n)).isoformat()}
    r = client.post("/v1/events", json=event, headers=keys.headers("ingest"))
    assert r.status_code in (200, 201, 202), r.text


def _recs(client: TestClient, keys: TenantKeys, user: str) -> dict[str, Any]:
    r = client.post("/v1/recommendations", json={"user_id": user, "n": 5, "explain": True},
                    headers=keys.headers("serve"))
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(("method", "path", "body", "least"), ROUTES)
def test_every_privacy_route_rejects_weaker_scopes(
    client: TestClient, tenant_a: TenantKeys, method: str, path: str,
    body: dict[str, Any] | None, least: str,
) -> None:
    order = ["ingest", "serve", "admin"]
    for scope in order:
        r = client.request(method, path, json=body, headers=tenant_a.headers(scope))
        allowed = scope == least or scope == "admin"
        assert (r.status_code != 403) is allowed, (scope, r.status_code, r.text)
    assert client.request(method, path, json=body).status_code == 401


def test_withdrawal_takes_effect_on_the_very_next_call(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    _seed(client, tenant_a)
    assert _recs(client, tenant_a, "u1")["personalized"] is False, "opt-in by default"
    _consent(client, tenant_a, "u1", "personalization", "grant")
    _consent(client, tenant_a, "u1", "profiling", "grant")
    _view(client, tenant_a, "u1", "i1", 1)
    assert _recs(client, tenant_a, "u1")["personalized"] is True
    _consent(client, tenant_a, "u1", "personalization", "withdraw")
    out = _recs(client, tenant_a, "u1")
    assert out["personalized"] is False
    assert any("consent" in w for w in out["warnings"])
    decisions = client.get("/v1/users/u1/consent-decisions", headers=tenant_a.headers()).json()
    assert decisions["decisions"]["personalization"]["basis"] == "withdrawn"
    assert decisions["decisions"]["email_marketing"]["basis"] == "default:opt-in"


def test_without_profiling_consent_events_do_not_feed_the_online_state(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    _seed(client, tenant_a)
    state = client.app.state.runtime.engine.state  # type: ignore[attr-defined]
    _consent(client, tenant_a, "p1", "personalization", "grant")
    _view(client, tenant_a, "p1", "i2", 1)
    assert state.user_state("default", "p1").recent == []
    assert state.item_popularity("default", ["i2"])["i2"] == 0.0
    _consent(client, tenant_a, "p1", "profiling", "grant")
    _view(client, tenant_a, "p1", "i3", 2)
    assert [i.item_id for i in state.user_state("default", "p1").recent] == ["i3"]


def test_export_holds_one_person_and_every_record(
    client: TestClient, tenant_a: TenantKeys, tenant_b: TenantKeys
) -> None:
    _seed(client, tenant_a)
    h = tenant_a.headers()
    for user in ("ann", "bob"):
        client.put(f"/v1/users/{user}", json={"profile": {"email": f"{user}@example.org"}},
                   headers=h)
        _consent(client, tenant_a, user, "personalization", "grant")
        _consent(client, tenant_a, user, "profiling", "grant")
    for n in range(3):
        _view(client, tenant_a, "ann", f"i{n}", n)
    _view(client, tenant_a, "bob", "i5", 9)
    rec = _recs(client, tenant_a, "ann")
    client.app.state.runtime.engine.impressions.flush()  # type: ignore[attr-defined]
    data = client.get("/v1/users/ann/export", headers=h).json()
    text = str(data)
    assert "bob" not in text and "i5" not in {e.get("item_id") for e in data["events"]}
    assert {e["event_id"] for e in data["events"]} == {f"ann-i{n}-{n}" for n in range(3)}
    assert len(data["consents"]) == 2 and data["profile"]["profile"]["email"] == "ann@example.org"
    assert [r["recommendation_id"] for r in data["recommendations"]] == [rec["recommendation_id"]]
    assert {r["item_id"] for r in data["inferred"]["recent_items"]} == {"i0", "i1", "i2"}
    assert data["messages"]["items"] == [] and "note" in data["messages"]  # none were sent
    archive = client.get("/v1/users/ann/export", params={"format": "zip"}, headers=h)
    names = set(zipfile.ZipFile(io.BytesIO(archive.content)).namelist())
    assert {"export.json", "events.csv", "consents.csv", "recommendations.csv"} <= names
    anonymized = client.get("/v1/users/ann/export", params={"anonymized": "true"}, headers=h)
    assert "ann@example.org" not in anonymized.text and '"ann"' not in anonymized.text
    other = client.get("/v1/users/ann/export", headers=tenant_b.headers()).json()
    assert other["events"] == [] and other["profile"] is None


def test_erasure_receipt_and_nothing_returned_afterwards(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    _seed(client, tenant_a)
    h = tenant_a.headers()
    client.put("/v1/users/eve", json={"profile": {"name": "Eve"}}, headers=h)
    assert client.post("/v1/users/eve/aliases", json={"anonymous_id": "dev-1"},
                       headers=h).status_code == 200
    _consent(client, tenant_a, "eve", "profiling", "grant")
    _view(client, tenant_a, "eve", "i4", 1)
    receipt = client.delete("/v1/users/eve", headers=h).json()
    assert receipt["profile_deleted"] and receipt["events_deleted"] == 1
    assert receipt["consents_deleted"] == 1 and receipt["receipt_id"]
    assert client.get("/v1/users/eve", headers=h).status_code == 404
    data = client.get("/v1/users/eve/export", headers=h).json()
    assert data["events"] == [] and data["consents"] == [] and data["profile"] is None
    state = client.app.state.runtime.engine.state  # type: ignore[attr-defined]
    assert state.user_state("default", "eve").recent == []
    replay = client.post("/v1/events", headers=tenant_a.headers("ingest"), json={
        "event_id": "eve-i4-1", "type": "view", "user_id": "eve", "item_id": "i4",
        "timestamp": NOW.isoformat()})
    assert replay.status_code == 410
    assert state.user_state("default", "eve").recent == []
    bulk = client.post("/v1/users:erase", json={"user_ids": ["x1", "x2"]}, headers=h).json()
    assert [r["user_id"] for r in bulk["receipts"]] == ["x1", "x2"]
    anon = client.delete("/v1/anonymous/stranger", headers=h).json()
    assert anon["user_id"] == "anon:stranger"


def test_not_interested_and_preferences_are_honoured_at_once(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    _seed(client, tenant_a)
    _consent(client, tenant_a, "u9", "personalization", "grant")
    assert any(int(i["item_id"][1:]) >= 6 for i in _recs(client, tenant_a, "u9")["items"])
    r = client.post("/v1/users/u9/not-interested", json={"category": "books"},
                    headers=tenant_a.headers("admin"))
    assert r.status_code == 200 and r.json()["value"] == "books"
    assert all(int(i["item_id"][1:]) < 6 for i in _recs(client, tenant_a, "u9")["items"])
    client.post("/v1/users/u9/not-interested", json={"item_id": "i0"},
                headers=tenant_a.headers("admin"))
    assert "i0" not in {i["item_id"] for i in _recs(client, tenant_a, "u9")["items"]}
    bad = client.post("/v1/users/u9/not-interested", json={"item_id": "i1", "category": "x"},
                      headers=tenant_a.headers("admin"))
    assert bad.status_code == 422


def test_explain_reads_the_logged_impression(client: TestClient, tenant_a: TenantKeys) -> None:
    _seed(client, tenant_a)
    _consent(client, tenant_a, "u3", "personalization", "grant")
    rec = _recs(client, tenant_a, "u3")
    r = client.get(f"/v1/recommendations/{rec['recommendation_id']}/explain",
                   headers=tenant_a.headers("serve"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["item_id"] for i in body["items"]] == [i["item_id"] for i in rec["items"]]
    assert all(i["explanation"] for i in body["items"])
    assert client.get("/v1/recommendations/unknown/explain",
                      headers=tenant_a.headers("serve")).status_code == 404


def test_admin_reads_are_audited_by_pseudonym(client: TestClient, tenant_a: TenantKeys) -> None:
    h = tenant_a.headers()
    client.get("/v1/users/ann/export", headers=h)
    client.get("/v1/users/bob/preferences", headers=h)
    entries = client.get("/v1/privacy/audit", params={"user_id": "ann"}, headers=h).json()
    assert [e["resource"] for e in entries["entries"]] == ["GET /v1/users/{user_id}/export"]
    assert entries["entries"][0]["subject"].startswith("p_")
    assert "ann" not in str(entries)


def test_the_audit_log_records_the_status_the_caller_got(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    h = tenant_a.headers()
    assert client.get("/v1/users/ghost", headers=h).status_code == 404
    assert client.put("/v1/users/ann", json={"profile": {"name": "Ann"}},
                      headers=h).status_code == 200
    assert client.get("/v1/users/ann", headers=h).status_code == 200
    ghost = client.get("/v1/privacy/audit", params={"user_id": "ghost"}, headers=h).json()
    assert [(e["resource"], e["status"]) for e in ghost["entries"]] == [
        ("GET /v1/users/{user_id}", 404)]
    ann = client.get("/v1/privacy/audit", params={"user_id": "ann"}, headers=h).json()
    assert sorted(e["status"] for e in ann["entries"]) == [200, 200]


def test_a_refused_parameter_or_body_is_audited_as_422_not_500(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    h = tenant_a.headers()
    assert client.put("/v1/users/ann/preferences", json={"declared_interests": 3},
                      headers=h).status_code == 422
    assert client.patch("/v1/users/ann", json={"nope": 1}, headers=h).status_code == 422
    ann = client.get("/v1/privacy/audit", params={"user_id": "ann"}, headers=h).json()
    assert sorted((e["resource"], e["status"]) for e in ann["entries"]) == [
        ("PATCH /v1/users/{user_id}", 422), ("PUT /v1/users/{user_id}/preferences", 422)]
