"""Journeys reach people who exist only through events (imported or sent without a user
record): the journey starts on their event, the worker delivers to them (here through the
in-app inbox, which needs no address), and someone with neither record nor events is not
invented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.domain.consents import ConsentRecord, ConsentState
from personify.runtime.messaging import MessagingRuntime
from personify.storage.registry import Stores
from personify.testing.clocks import daytime_clock

if TYPE_CHECKING:
    from conftest import TenantKeys

NOTE = {"name": "note", "channel": "inbox", "recommendations": 0,
        "variants": [{"subject": "Thanks for looking", "text": "We saw you looked at {{ "
                      "event.item_id }}."}]}
JOURNEY = {"trigger": {"event": "view"}, "consent_purpose": "push_marketing",
           "steps": [{"type": "send", "id": "s", "template": "note", "channel": "inbox"}]}


def test_a_journey_reaches_a_person_known_only_through_events(
    app: FastAPI, client: TestClient, tenant_a: TenantKeys, stores: Stores
) -> None:
    admin = tenant_a.headers("admin")
    messaging: MessagingRuntime = app.state.runtime.messaging
    messaging.clock = daytime_clock()  # outside quiet hours whatever the wall clock says
    assert client.put("/v1/messaging/templates/note", json=NOTE, headers=admin).status_code == 200
    assert client.put("/v1/messaging/journeys/looked", json=JOURNEY,
                      headers=admin).status_code == 200
    stores.consents.append("default", ConsentRecord(
        user_id="ghost", purpose="push_marketing", state=ConsentState.GRANTED))
    event = {"event_id": "g-1", "type": "view", "user_id": "ghost", "item_id": "i7",
             "timestamp": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}
    assert client.post("/v1/events", json=event,
                       headers=tenant_a.headers("ingest")).status_code == 200
    assert stores.users.get("default", "ghost") is None  # no user record, only the event

    run = client.get("/v1/messaging/journeys/looked/runs/ghost", headers=admin)
    assert run.status_code == 200, run.text
    messaging.tick()
    messaging.worker.run_until_idle()
    inbox = client.get("/v1/messaging/inbox/ghost", headers=tenant_a.headers("serve")).json()
    assert [e["subject"] for e in inbox["entries"]] == ["Thanks for looking"]
    assert "i7" in inbox["entries"][0]["text"]

    assert messaging.person("default", "nobody") is None
    assert messaging.person("default", "ghost") is not None
    assert set(messaging.people("default", ["ghost", "nobody"])) == {"ghost"}


def test_many_people_known_only_through_events_are_found_in_one_bulk_read(
    app: FastAPI, client: TestClient, tenant_a: TenantKeys, stores: Stores
) -> None:
    """A batch's people without a user record are looked up together (one bulk read of their
    events), not with one events query per person (what made journeys cost a query per event)."""
    messaging: MessagingRuntime = app.state.runtime.messaging
    when = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    events = [{"event_id": f"m-{k}", "type": "view", "user_id": f"ghost{k}", "item_id": "i7",
               "timestamp": when} for k in range(30)]
    assert client.post("/v1/events/batch", json={"events": events},
                       headers=tenant_a.headers("ingest")).status_code == 200
    calls: list[str] = []
    real_for_user = messaging.stores.events.for_user

    def counting_for_user(tenant: str, user_id: str, **kwargs: object) -> object:
        calls.append(user_id)
        return real_for_user(tenant, user_id, **kwargs)  # type: ignore[arg-type]

    messaging.stores.events.for_user = counting_for_user  # type: ignore[method-assign]
    try:
        found = messaging.people("default", [f"ghost{k}" for k in range(30)] + ["nobody"])
    finally:
        del messaging.stores.events.for_user
    assert set(found) == {f"ghost{k}" for k in range(30)}
    assert calls == []
