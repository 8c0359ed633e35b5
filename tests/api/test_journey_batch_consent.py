"""A batch of events reads its people's consent at once for the journeys it starts (one bulk
read, not one consent query per person), with the decisions one-by-one reads give: granted
people start the journey, the others (opt-in purpose, nothing recorded, or withdrawn) do not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.domain.consents import ConsentRecord, ConsentState
from personify.runtime.messaging import MessagingRuntime
from personify.storage.registry import Stores
from personify.testing.clocks import daytime_clock

if TYPE_CHECKING:
    from conftest import TenantKeys

NOTE = {"name": "note", "channel": "inbox", "recommendations": 0,
        "variants": [{"subject": "Hello", "text": "Hello"}]}
JOURNEY = {"trigger": {"event": "view"}, "consent_purpose": "push_marketing",
           "steps": [{"type": "send", "id": "s", "template": "note", "channel": "inbox"}]}


def journey_on_views(app: FastAPI, client: TestClient, admin: dict[str, str]) -> MessagingRuntime:
    """The ``looked`` journey (one inbox note on any view) saved, on a daytime clock."""
    messaging: MessagingRuntime = app.state.runtime.messaging
    messaging.clock = daytime_clock()
    assert client.put("/v1/messaging/templates/note", json=NOTE, headers=admin).status_code == 200
    assert client.put("/v1/messaging/journeys/looked", json=JOURNEY,
                      headers=admin).status_code == 200
    return messaging


def test_a_batch_reads_consent_once_and_decides_as_one_by_one(
    app: FastAPI, client: TestClient, tenant_a: TenantKeys, stores: Stores
) -> None:
    admin = tenant_a.headers("admin")
    messaging = journey_on_views(app, client, admin)
    people = [f"p{k}" for k in range(20)]
    assert client.post("/v1/users:bulk", json={"users": [{"user_id": p} for p in people]},
                       headers=admin).status_code == 200
    for k, person in enumerate(people):
        if k % 2 == 0 or k % 5 == 0:
            stores.consents.append("default", ConsentRecord(
                user_id=person, purpose="push_marketing", state=ConsentState.GRANTED))
        if k % 5 == 0:  # granted, then withdrawn
            stores.consents.append("default", ConsentRecord(
                user_id=person, purpose="push_marketing", state=ConsentState.DENIED))
    allowed = {p for k, p in enumerate(people) if k % 2 == 0 and k % 5 != 0}

    reads: list[str] = []
    consents: Any = messaging.stores.consents
    real_history = consents.history

    def counting_history(tenant: str, user_id: str) -> Any:
        reads.append(user_id)
        return real_history(tenant, user_id)

    consents.history = counting_history
    try:
        when = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        events = [{"event_id": f"v-{p}", "type": "view", "user_id": p, "item_id": "i1",
                   "timestamp": when} for p in people]
        assert client.post("/v1/events/batch", json={"events": events},
                           headers=tenant_a.headers("ingest")).status_code == 200
    finally:
        del consents.history
    assert reads == []  # every person's consent came from the one bulk read
    started = {p for p in people if client.get(
        f"/v1/messaging/journeys/looked/runs/{p}", headers=admin).status_code == 200}
    assert started == allowed


def test_a_batchs_people_known_only_through_its_events_need_no_events_read(
    app: FastAPI, client: TestClient, tenant_a: TenantKeys, stores: Stores
) -> None:
    """People without a user record whose events the batch just stored are known through
    those events: the journeys start for them without reading their events back."""
    admin = tenant_a.headers("admin")
    messaging = journey_on_views(app, client, admin)
    ghosts = [f"ghost{k}" for k in range(10)]
    for ghost in ghosts:
        stores.consents.append("default", ConsentRecord(
            user_id=ghost, purpose="push_marketing", state=ConsentState.GRANTED))
    reads: list[object] = []
    events_store: Any = messaging.stores.events
    real_recent, real_for_user = events_store.recent_for_users, events_store.for_user
    events_store.recent_for_users = lambda *a, **k: reads.append(a) or real_recent(*a, **k)
    events_store.for_user = lambda *a, **k: reads.append(a) or real_for_user(*a, **k)
    try:
        when = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        events = [{"event_id": f"g-{g}", "type": "view", "user_id": g, "item_id": "i1",
                   "timestamp": when} for g in ghosts]
        assert client.post("/v1/events/batch", json={"events": events},
                           headers=tenant_a.headers("ingest")).status_code == 200
    finally:
        del events_store.recent_for_users, events_store.for_user
    assert reads == []
    assert all(client.get(f"/v1/messaging/journeys/looked/runs/{g}",
                          headers=admin).status_code == 200 for g in ghosts)
    assert messaging.person("default", "nobody") is None
