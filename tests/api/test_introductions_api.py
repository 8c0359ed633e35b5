"""Double opt-in introductions through the API: the recipient is asked through the messaging
outbox (consent applies), accept shares contacts both ways, decline is final and silent, bad
input is refused with the field, retries are idempotent, and the KPI counts it all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from _clocked_app import clocked_app, opt_out_settings, put_user  # noqa: F401 - fixtures
from fastapi import FastAPI
from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from conftest import TenantKeys


NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TEMPLATE = {"channel": "email", "recommendations": 0,
            "variants": [{"subject": "{{ event.from_name }} would like to meet you",
                          "text": "{{ event.text }}"}]}


@pytest.fixture
def clock() -> list[datetime]:
    return [NOW]


def _ask(client: TestClient, keys: TenantKeys, a: str, b: str) -> Any:
    return client.post("/v1/introductions", json={"from_user_id": a, "to_user_id": b},
                       headers=keys.headers())


def _error(r: Any) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["field"]


def test_double_opt_in_flow(client: TestClient, tenant_a: TenantKeys, app: FastAPI,
                            clock: list[datetime]) -> None:
    admin = tenant_a.headers()
    assert client.put("/v1/messaging/templates/introduction", json=TEMPLATE,
                      headers=admin).status_code == 200
    put_user(client, tenant_a, "ann", name="Ann", email="ann@example.org", skills=["qiskit"])
    put_user(client, tenant_a, "bob", name="Боб", email="bob@example.org", skills=["qiskit"],
          language="ru", properties={"tone": "informal"})
    put_user(client, tenant_a, "cat", name="Cat", email="cat@example.org")
    put_user(client, tenant_a, "ghost", properties={"network_discoverable": False})

    r = _ask(client, tenant_a, "ann", "bob")
    assert r.status_code == 201, r.text
    intro = r.json()
    assert intro["status"] == "pending" and intro["contact"] is None
    assert intro["message"] == "queued"
    again = _ask(client, tenant_a, "ann", "bob")  # a retry: same introduction, nothing new
    assert again.status_code == 200 and again.json()["introduction_id"] == intro["introduction_id"]
    outbox = client.get("/v1/messaging/outbox", headers=admin).json()
    assert sum(outbox["counts"].values()) == 1
    # the personalized text (recipient's language and tone, what they share) is in the message
    messaging = app.state.runtime.messaging
    [queued] = messaging.state.outbox.for_user("default", "bob")
    assert queued.user_id == "bob" and "qiskit" in queued.context["event"]["text"]
    assert queued.context["event"]["text"].startswith("Привет")
    # without email-marketing consent the worker suppresses it (consent rules apply)
    messaging.worker.run_until_idle()
    assert client.get("/v1/messaging/outbox", headers=admin).json()["counts"] == {"suppressed": 1}

    iid = intro["introduction_id"]
    accepted = client.post(f"/v1/introductions/{iid}/accept", headers=admin)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["contact"]["email"] == "ann@example.org"
    seen_by_ann = client.get(f"/v1/introductions/{iid}?as_user=ann", headers=admin).json()
    assert seen_by_ann["status"] == "accepted"
    assert seen_by_ann["contact"]["email"] == "bob@example.org"
    assert client.post(f"/v1/introductions/{iid}/accept", headers=admin).status_code == 200
    assert _error(client.post(f"/v1/introductions/{iid}/decline", headers=admin)) == (
        422, "introduction_id")
    # connected now: not suggested to each other
    people = client.get("/v1/users/ann/people", headers=tenant_a.headers("serve")).json()
    assert "bob" not in [p["person_id"] for p in people["people"]]

    # decline: final for cat, silent for ann (pending, then expired)
    declined_id = _ask(client, tenant_a, "ann", "cat").json()["introduction_id"]
    assert client.post(f"/v1/introductions/{declined_id}/decline",
                       headers=admin).json()["status"] == "declined"
    view = client.get(f"/v1/introductions/{declined_id}?as_user=ann", headers=admin).json()
    assert view["status"] == "pending" and view["contact"] is None
    assert _ask(client, tenant_a, "ann", "cat").json()["status"] == "pending"  # still silent
    assert _error(client.post(f"/v1/introductions/{declined_id}/accept", headers=admin)) == (
        422, "introduction_id")
    assert client.get(f"/v1/introductions/{declined_id}?as_user=cat",
                      headers=admin).json()["status"] == "declined"

    # expiry
    pending_id = _ask(client, tenant_a, "cat", "bob").json()["introduction_id"]
    clock[0] = NOW + timedelta(days=15)
    assert client.get(f"/v1/introductions/{declined_id}?as_user=ann",
                      headers=admin).json()["status"] == "expired"
    late = client.post(f"/v1/introductions/{pending_id}/accept", headers=admin)
    assert _error(late) == (422, "introduction_id") and "expired" in late.json()["error"]["message"]

    kpi = client.get("/v1/introductions/kpi", headers=admin).json()
    assert (kpi["requested"], kpi["accepted"], kpi["declined"], kpi["expired"]) == (3, 1, 1, 1)
    assert kpi["acceptance_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert kpi["by_source"]["user"]["requested"] == 3

    # bad input: self, unknown, undiscoverable, blocked, erased, unknown introduction
    assert _error(_ask(client, tenant_a, "ann", "ann")) == (422, "to_user_id")
    assert _error(_ask(client, tenant_a, "ann", "nobody")) == (404, "to_user_id")
    assert _error(_ask(client, tenant_a, "nobody", "ann")) == (404, "from_user_id")
    assert _error(_ask(client, tenant_a, "cat", "ghost")) == (422, "to_user_id")
    block = {"event_id": "blk", "type": "block", "user_id": "cat",
             "properties": {"person_id": "ann"}, "timestamp": NOW.isoformat()}
    assert client.post("/v1/events", json=block, headers=tenant_a.headers("ingest")).status_code \
        in (200, 201, 202)
    assert _error(_ask(client, tenant_a, "cat", "ann")) == (422, "to_user_id")
    assert client.delete("/v1/users/cat", headers=admin).status_code == 200
    assert _error(_ask(client, tenant_a, "bob", "cat")) == (410, "to_user_id")
    assert _error(client.post("/v1/introductions/intro_nope/accept", headers=admin)) == (
        404, "introduction_id")
    bad = client.post("/v1/introductions", json={"from_user_id": "ann"}, headers=admin)
    assert bad.status_code == 422 and "to_user_id" in bad.text
    assert client.post("/v1/introductions", json={"from_user_id": "ann", "to_user_id": "bob"},
                       headers=tenant_a.headers("serve")).status_code == 403
