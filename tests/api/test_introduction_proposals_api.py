"""System-proposed introductions (POST /v1/introductions:propose): the engine proposes A <-> B
from A's reciprocal people list; B is asked through the outbox with the built-in sandboxed
``introduction`` template in B's language and tone, naming what they share, at B's best send
time; retries answer the same proposals; a decline is final and silent to A; acceptance is
reported per source and variant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from _clocked_app import clocked_app, opt_out_settings, put_user  # noqa: F401 - fixtures
from fastapi import FastAPI
from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from conftest import TenantKeys


NOW = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
_seq = iter(range(1_000_000))


@pytest.fixture
def clock() -> list[datetime]:
    return [NOW]


def _network(client: TestClient, keys: TenantKeys) -> None:
    put_user(client, keys, "me", name="Ann", email="ann@example.org", skills=["qiskit"],
          goals=["offer:mentoring"], properties={"profile_url": "https://example.org/ann"})
    put_user(client, keys, "ru", name="Борис", email="b@example.org", skills=["qiskit"],
          goals=["seek:mentoring"], language="ru", properties={"tone": "informal"})
    put_user(client, keys, "en", name="Eve", email="e@example.org", skills=["qiskit", "qec"])
    put_user(client, keys, "third", name="Tom", email="t@example.org", skills=["qec"])
    events = [{"event_id": f"x{next(_seq)}", "type": "message", "user_id": "me",
               "properties": {"person_id": "hub"}, "timestamp": (NOW - timedelta(hours=2))
               .isoformat()}]
    for other in ("ru", "en", "third"):
        for actor, target in (("hub", other), (other, "hub")):
            events.append({"event_id": f"x{next(_seq)}", "type": "reply", "user_id": actor,
                           "properties": {"person_id": target, "topics": ["qiskit"]},
                           "timestamp": (NOW - timedelta(hours=1)).isoformat()})
    r = client.post("/v1/events/batch", json={"events": events}, headers=keys.headers("ingest"))
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def _propose(client: TestClient, keys: TenantKeys, uid: str, n: int) -> Any:
    return client.post("/v1/introductions:propose", json={"user_id": uid, "n": n},
                       headers=keys.headers())


def test_system_proposals_messages_and_kpi(client: TestClient, tenant_a: TenantKeys,
                                           app: FastAPI) -> None:
    admin = tenant_a.headers()
    _network(client, tenant_a)
    people = client.get("/v1/users/me/people", headers=tenant_a.headers("serve")).json()
    ranked = [p["person_id"] for p in people["people"]]
    r = _propose(client, tenant_a, "me", 2)
    assert r.status_code == 200, r.text
    first = r.json()
    assert {v["to_user_id"] for v in first} == set(ranked[:2])
    assert all(v["source"] == "system" and v["status"] == "pending" for v in first)
    assert all(v["message"] == "queued" for v in first)
    again = _propose(client, tenant_a, "me", 2).json()  # a retry: the same, nothing new
    assert [v["introduction_id"] for v in again] == [v["introduction_id"] for v in first]
    messaging = app.state.runtime.messaging
    assert sum(len(messaging.state.outbox.for_user("default", p)) for p in ranked) == 2

    # B's message: the built-in template in B's language and tone, naming what they share
    to_ru = next((v for v in first if v["to_user_id"] == "ru"), None)
    assert to_ru is not None and to_ru["variant"] == "ru-informal"
    [queued] = messaging.state.outbox.for_user("default", "ru")
    assert queued.template == "introduction" and queued.not_before >= NOW
    event = queued.context["event"]
    assert event["shared"] == ["qiskit"] and event["they_offer"] == ["mentoring"]
    shown = client.post("/v1/messaging/templates/introduction/preview", headers=admin,
                        json={"user_id": "ru", "event": event})
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert (body["language"], body["tone"]) == ("ru", "informal")
    assert body["subject"] == "Познакомишься с Ann?"
    assert "qiskit" in body["text"] and "mentoring" in body["text"]
    assert "https://example.org/ann" in body["text"]
    # the operator's own template replaces the built-in one
    own = {"channel": "email", "recommendations": 0,
           "variants": [{"subject": "Intro: {{ event.from_name }}", "text": "{{ event.text }}"}]}
    assert client.put("/v1/messaging/templates/introduction", json=own,
                      headers=admin).status_code == 200
    mine = client.post("/v1/messaging/templates/introduction/preview", headers=admin,
                       json={"user_id": "ru", "event": event}).json()
    assert mine["subject"] == "Intro: Ann"

    # a decline is final and silent; the next proposal goes to someone else
    declined, kept = sorted(first, key=lambda v: v["to_user_id"] != "ru")  # decline ru's
    assert client.post(f"/v1/introductions/{declined['introduction_id']}/decline",
                       headers=admin).status_code == 200
    seen = client.get(f"/v1/introductions/{declined['introduction_id']}?as_user=me",
                      headers=admin).json()
    assert seen["status"] == "pending"
    nxt = _propose(client, tenant_a, "me", 2).json()
    ids = [v["to_user_id"] for v in nxt]
    assert kept["to_user_id"] in ids and declined["to_user_id"] not in ids and len(ids) == 2
    assert client.post(f"/v1/introductions/{kept['introduction_id']}/accept",
                       headers=admin).status_code == 200

    kpi = client.get("/v1/introductions/kpi", headers=admin).json()
    assert kpi["by_source"]["system"]["requested"] == 3
    assert kpi["by_source"]["system"]["acceptance_rate"] == pytest.approx(0.5)
    variants = {v: c["requested"] for v, c in kpi["by_variant"].items()}
    assert sum(variants.values()) == 3 and variants.get("ru-informal") == 1
    assert sum(c["requested"] for k, c in kpi["by_source_and_variant"].items()
               if k.startswith("system/")) == 3


def test_proposal_bad_input(client: TestClient, tenant_a: TenantKeys) -> None:
    admin = tenant_a.headers()
    _network(client, tenant_a)
    r = _propose(client, tenant_a, "nobody", 2)
    assert r.status_code == 404 and r.json()["error"]["field"] == "user_id"
    for bad in ({"user_id": "me", "n": 0}, {"user_id": "me", "n": 21}, {"n": 2},
                {"user_id": "", "n": 1}):
        r = client.post("/v1/introductions:propose", json=bad, headers=admin)
        assert r.status_code == 422, bad
    assert client.post("/v1/introductions:propose", json={"user_id": "me"},
                       headers=tenant_a.headers("serve")).status_code == 403
    r = client.post("/v1/introductions", headers=admin,
                    json={"from_user_id": "me", "to_user_id": "en", "variant": "bad variant!"})
    assert r.status_code == 422 and "variant" in r.text
    assert client.delete("/v1/users/me", headers=admin).status_code == 200
    r = _propose(client, tenant_a, "me", 2)
    assert r.status_code == 410 and r.json()["error"]["field"] == "user_id"
    # without personalization consent the engine proposes nobody
    r = client.post("/v1/users/en/consents/personalization:deny", json={}, headers=admin)
    assert r.status_code in (200, 201)
    assert _propose(client, tenant_a, "en", 2).json() == []
