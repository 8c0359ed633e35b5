"""GET /v1/users/{id}/people through the API: lifecycle events, reasons from visible fields only,
discoverability, blocks, connections, consent, erasure and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.api import create_app
from personify.settings import Settings
from personify.storage.registry import Stores

if TYPE_CHECKING:
    from conftest import TenantKeys

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
_seq = iter(range(1_000_000))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, model_dir=str(tmp_path / "models"), demo=False,
                    consent_defaults={"profiling": "opt-out", "personalization": "opt-out"})


@pytest.fixture
def app(settings: Settings, stores: Stores, tenant_a: TenantKeys) -> FastAPI:
    return create_app(settings, stores=stores, clock=lambda: NOW)


def _event(kind: str, actor: str, other: str, **props: Any) -> dict[str, Any]:
    return {"event_id": f"n{next(_seq)}", "type": kind, "user_id": actor,
            "properties": {"person_id": other, **props},
            "timestamp": (NOW - timedelta(hours=1)).isoformat()}


def _send(client: TestClient, keys: TenantKeys, events: list[dict[str, Any]]) -> dict[str, Any]:
    r = client.post("/v1/events/batch", json={"events": events}, headers=keys.headers("ingest"))
    assert r.status_code in (200, 207), r.text
    body: dict[str, Any] = r.json()
    return body


def _user(client: TestClient, keys: TenantKeys, uid: str, **profile: Any) -> None:
    props = profile.pop("properties", {})
    r = client.put(f"/v1/users/{uid}", json={"profile": profile, "properties": props},
                   headers=keys.headers())
    assert r.status_code in (200, 201), r.text


def _people(client: TestClient, keys: TenantKeys, uid: str) -> dict[str, Any]:
    r = client.get(f"/v1/users/{uid}/people?n=20", headers=keys.headers("serve"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _ids(body: dict[str, Any]) -> list[str]:
    return [p["person_id"] for p in body["people"]]


def _network(client: TestClient, keys: TenantKeys) -> None:
    _user(client, keys, "me", skills=["qiskit"], goals=["seek:mentoring"])
    _user(client, keys, "mentor", name="Mentor", skills=["qiskit", "qec"],
          goals=["offer:mentoring"])
    _user(client, keys, "shy", skills=["qiskit"], goals=["offer:mentoring"],
          properties={"network_hidden": ["skills", "goals"]})
    _user(client, keys, "ghost", skills=["qiskit"], properties={"network_discoverable": False})
    events = [_event("message", "me", "hub")]
    for other in ("mentor", "shy", "ghost", "rude", "peer"):
        events += [_event("reply", "hub", other, topics=["qiskit"], offered=True),
                   _event("reply", other, "hub", thread="t1")]
    _send(client, keys, events)


def test_people_reasons_safety_and_lifecycle(client: TestClient, tenant_a: TenantKeys) -> None:
    _network(client, tenant_a)
    body = _people(client, tenant_a, "me")
    ids = _ids(body)
    assert body["model"] == "prior"
    assert {"mentor", "shy", "rude", "peer"} <= set(ids)
    assert "ghost" not in ids and "hub" not in ids and "me" not in ids  # undiscoverable, known
    mentor = next(p for p in body["people"] if p["person_id"] == "mentor")
    kinds = {r["kind"]: r for r in mentor["reasons"]}
    assert kinds["they_offer"]["topics"] == ["mentoring"]
    assert kinds["shared_topics"]["topics"] == ["qiskit"]
    assert kinds["common_contacts"]["count"] == 1
    assert mentor["name"] == "Mentor" and 0 < mentor["score"] <= 1
    shy = next(p for p in body["people"] if p["person_id"] == "shy")
    assert {r["kind"] for r in shy["reasons"]} == {"common_contacts"}  # hidden fields unused
    assert "ghost" not in _ids(_people(client, tenant_a, "hub"))
    assert _people(client, tenant_a, "ghost")["people"]  # undiscoverable still gets people

    # a block either way keeps both apart; unblock restores
    _send(client, tenant_a, [_event("block", "rude", "me")])
    assert "rude" not in _ids(_people(client, tenant_a, "me"))
    assert "me" not in _ids(_people(client, tenant_a, "rude"))
    _send(client, tenant_a, [_event("unblock", "rude", "me")])
    assert "rude" in _ids(_people(client, tenant_a, "me"))

    # request + accept: both people's next answers change
    before_mentor = _people(client, tenant_a, "mentor")
    assert "me" in _ids(before_mentor)
    _send(client, tenant_a, [_event("connection_request", "me", "mentor"),
                             _event("connection_accept", "mentor", "me")])
    assert "mentor" not in _ids(_people(client, tenant_a, "me"))
    assert "me" not in _ids(_people(client, tenant_a, "mentor"))

    # a declined request keeps the pair apart
    _send(client, tenant_a, [_event("connection_decline", "peer", "me")])
    assert "peer" not in _ids(_people(client, tenant_a, "me"))

    # no personalization consent on the other side: not recommended; on mine: nothing
    r = client.post("/v1/users/shy/consents/personalization:deny", json={},
                    headers=tenant_a.headers())
    assert r.status_code == 201, r.text
    assert "shy" not in _ids(_people(client, tenant_a, "me"))

    # erasure: gone from everyone's lists at once, and the erased id is refused
    assert "rude" in _ids(_people(client, tenant_a, "me"))
    assert "rude" in _ids(_people(client, tenant_a, "mentor"))
    assert client.delete("/v1/users/rude", headers=tenant_a.headers()).status_code == 200
    assert "rude" not in _ids(_people(client, tenant_a, "mentor"))
    assert "rude" not in _ids(_people(client, tenant_a, "me"))
    gone = client.get("/v1/users/rude/people", headers=tenant_a.headers("serve"))
    assert gone.status_code == 410


def test_no_personalization_consent_gets_no_people(client: TestClient,
                                                   tenant_a: TenantKeys) -> None:
    _network(client, tenant_a)
    r = client.post("/v1/users/me/consents/personalization:deny", json={},
                    headers=tenant_a.headers())
    assert r.status_code == 201, r.text
    body = _people(client, tenant_a, "me")
    assert body["people"] == [] and "consent" in body["note"]


def test_person_events_are_validated_and_idempotent(client: TestClient,
                                                    tenant_a: TenantKeys) -> None:
    bad = [
        {**_event("connection_request", "me", "x"), "properties": {}},
        _event("follow", "me", "me"),
        _event("endorsement", "me", "x", topics="qiskit"),
        _event("reply", "me", "x", offered="yes"),
    ]
    body = _send(client, tenant_a, bad)
    fields = [r["field"] for r in body["rejected"]]
    assert fields == ["properties.person_id", "properties.person_id", "properties.topics",
                      "properties.offered"]
    good = _event("follow", "me", "x")
    assert _send(client, tenant_a, [good])["stored"] == 1
    again = _send(client, tenant_a, [good])
    assert again["stored"] == 0 and again["duplicates"] == 1


def test_tenants_do_not_share_networks(client: TestClient, tenant_a: TenantKeys,
                                       tenant_b: TenantKeys) -> None:
    _network(client, tenant_a)
    assert _people(client, tenant_a, "me")["people"]
    assert _people(client, tenant_b, "me")["people"] == []


def test_erasure_by_another_process_is_read_from_tombstones_not_per_request(
    client: TestClient, tenant_a: TenantKeys, stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The people route asks the erasure store no per-person question per request; a tombstone
    another process wrote leaves every list (and the id is refused) once the tombstones are
    read again (every ERASURE_POLL_S)."""
    from personify.networking import service as networking_service

    _network(client, tenant_a)
    asked: list[str] = []
    for name in ("find", "is_erased", "erased_among"):
        real = getattr(stores.erasures, name)

        def counting(*args: Any, _real: Any = real, _name: str = name) -> Any:
            asked.append(_name)
            return _real(*args)

        monkeypatch.setattr(stores.erasures, name, counting)
    for _ in range(3):
        for uid in ("me", "mentor", "peer", "hub"):
            _people(client, tenant_a, uid)
    assert asked == []
    assert "peer" in _ids(_people(client, tenant_a, "me"))

    # another process erased "peer": only its tombstone is in the shared store
    digest = stores.erasures.user_id_hash("default", "peer")
    stores.erasures.record("default", digest, NOW, "receipt-elsewhere")
    monkeypatch.setattr(networking_service, "ERASURE_POLL_S", 0.0)
    assert "peer" not in _ids(_people(client, tenant_a, "me"))
    assert "peer" not in _ids(_people(client, tenant_a, "mentor"))
    gone = client.get("/v1/users/peer/people", headers=tenant_a.headers("serve"))
    assert gone.status_code == 410
    assert asked == []


def test_people_route_runs_on_the_event_loop() -> None:
    """A thread hop per request made the tail explode at 200 requests/s (benchmark
    benchmarks/networking.py); the route is a coroutine that hops only to load a network."""
    import inspect

    from personify.api.routers.networking import get_people

    assert inspect.iscoroutinefunction(get_people)


def test_served_people_use_the_learned_reciprocal_combination(
    client: TestClient, tenant_a: TenantKeys, settings: Settings
) -> None:
    """The score the API answers is the trained model's weighted geometric mean of both sides'
    predicted interest, with the forward share stored in the model file."""
    import json

    from personify.networking.service import model_path, prior_model

    path = model_path(settings.model_dir, "default")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(prior_model().with_share(0.25).to_dict()), encoding="utf-8")
    _network(client, tenant_a)
    body = _people(client, tenant_a, "me")
    assert body["model"] == "trained" and body["people"]
    lopsided = 0
    for p in body["people"]:
        f, b = p["interest_forward"], p["interest_backward"]
        assert p["score"] == pytest.approx(f**0.25 * b**0.75, abs=2e-6)
        lopsided += abs(f - b) > 1e-3
    assert lopsided  # the share made a difference for some pair (not a symmetric check)


def test_rendered_people_are_reused_until_a_profile_changes(
    client: TestClient, tenant_a: TenantKeys, app: FastAPI
) -> None:
    """Each entry is rendered once and reused while its match and both profiles are unchanged;
    a profile write is seen on the next answer."""
    _network(client, tenant_a)
    service = app.state.runtime.networking
    first = service.people_body("default", "me", 5)
    again = service.people_body("default", "me", 5)
    assert first["people"] and all(
        a is b for a, b in zip(first["people"], again["people"], strict=True))
    _user(client, tenant_a, "mentor", name="Renamed Mentor", skills=["qiskit", "qec"],
          goals=["offer:mentoring"])
    names = {p["person_id"]: p["name"] for p in _people(client, tenant_a, "me")["people"]}
    assert names["mentor"] == "Renamed Mentor"
