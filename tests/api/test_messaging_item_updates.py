"""Price drops and restocks through the API: item writes (PUT, PATCH, ``:bulk``) become the
internal trigger events ``item.price_dropped`` / ``item.back_in_stock``, and the built-in
``price_drop`` / ``back_in_stock`` journeys message the people who viewed the item recently, and
nobody else, delivered to a real local SMTP server."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from _messaging_app import clocked_messaging, smtp_sink  # noqa: F401 - fixtures
from fastapi.testclient import TestClient

from personify.messaging.item_updates import BACK_IN_STOCK, ItemChange
from personify.runtime.messaging import MessagingRuntime
from personify.settings import Settings

pytest.importorskip("aiosmtpd")

from personify.messaging.smtp_sink import SmtpSink

if TYPE_CHECKING:
    from conftest import TenantKeys

SECRET = "tracking-secret-for-the-api-tests-0123"
PRICE_DROP_TEMPLATE = {
    "recommendations": 0,
    "variants": [{
        "subject": "{{ event.item_title }} now {{ '%.2f'|format(event.new_price) }}"
                   " {{ event.currency }}",
        "text": "Down {{ event.drop_percent }}% from {{ event.old_price }}.",
        "html": "<p>{{ event.item_title }} is cheaper</p>",
    }],
}
_ids = itertools.count()


@pytest.fixture
def settings(database_url: str, sink: SmtpSink) -> Settings:
    return Settings(database_url=database_url, demo=False, tracking_secret=SECRET,
                    smtp_host=sink.host, smtp_port=sink.port)


@pytest.fixture
def clock() -> list[datetime]:
    """10:00 UTC two days ago (outside quiet hours; the views below are in the past)."""
    start = (datetime.now(UTC) - timedelta(days=2)).replace(hour=10, minute=0, second=0,
                                                            microsecond=0)
    return [start]


def _view(client: TestClient, keys: TenantKeys, user: str, item: str, at: datetime) -> None:
    event = {"event_id": f"iu-{next(_ids)}", "type": "view", "user_id": user, "item_id": item,
             "timestamp": at.isoformat()}
    assert client.post("/v1/events", json=event, headers=keys.headers("ingest")).status_code == 200


def _shop(client: TestClient, keys: TenantKeys, people: tuple[str, ...]) -> None:
    admin = keys.headers("admin")
    for k in range(5):
        body = {"title": f"Lamp {k}", "price": 100.0, "currency": "EUR", "available": k != 2}
        assert client.put(f"/v1/items/i{k}", json=body, headers=admin).status_code == 200
    for person in people:
        profile = {"name": person.title(), "email": f"{person}@example.com"}
        assert client.put(f"/v1/users/{person}", json={"profile": profile},
                          headers=admin).status_code == 200
        for purpose in ("email_marketing", "push_marketing"):
            assert client.post(f"/v1/users/{person}/consents",
                               json={"purpose": purpose, "state": "granted"},
                               headers=admin).status_code == 201


def _run(client: TestClient, admin: dict[str, str], journey: str, user: str) -> Any:
    response = client.get(f"/v1/messaging/journeys/{journey}/runs/{user}", headers=admin)
    return response.json() if response.status_code == 200 else None


def test_a_price_drop_messages_the_recent_viewers_only(
    client: TestClient, tenant_a: TenantKeys, messaging: MessagingRuntime, sink: SmtpSink,
    clock: list[datetime],
) -> None:
    admin = tenant_a.headers("admin")
    _shop(client, tenant_a, ("ann", "bob", "carl", "dana", "old"))
    assert client.put("/v1/messaging/templates/price_drop", json=PRICE_DROP_TEMPLATE,
                      headers=admin).status_code == 200
    assert client.post("/v1/messaging/journeys/price_drop/enable",
                       headers=admin).status_code == 200
    viewed = clock[0] - timedelta(hours=1)
    _view(client, tenant_a, "ann", "i1", viewed)  # bob never viewed i1
    _view(client, tenant_a, "bob", "i0", viewed)
    _view(client, tenant_a, "carl", "i3", viewed)
    _view(client, tenant_a, "dana", "i4", viewed)
    _view(client, tenant_a, "old", "i1", clock[0] - timedelta(days=20))  # outside 14 days

    # a 10 % drop through PUT, a 2 % drop (under the journey's 5 %) and a price rise
    dropped = {"title": "Lamp 1", "price": 90.0, "currency": "EUR"}
    assert client.put("/v1/items/i1", json=dropped, headers=admin).status_code == 200
    assert client.patch("/v1/items/i3", json={"price": 98.0}, headers=admin).status_code == 200
    assert client.patch("/v1/items/i0", json={"price": 120.0}, headers=admin).status_code == 200
    # and a 20 % drop through the bulk import endpoint
    bulk = {"items": [{"item_id": "i4", "title": "Lamp 4", "price": 80.0, "currency": "EUR"}]}
    assert client.post("/v1/items:bulk", json=bulk, headers=admin).json()["accepted"] == 1

    messaging.run_once()  # the runs start and wait for each person's best hour (<= 24 h)
    assert _run(client, admin, "price_drop", "ann")["status"] == "active"
    assert _run(client, admin, "price_drop", "dana")["status"] == "active"
    for nobody in ("bob", "carl", "old"):
        assert _run(client, admin, "price_drop", nobody) is None
    assert sink.handler.message_ids == []

    clock[0] += timedelta(hours=24)
    messaging.run_once()
    mails = {m["To"].addresses[0].addr_spec: m for m in sink.handler.messages()}
    assert set(mails) == {"ann@example.com", "dana@example.com"}
    assert len(sink.handler.message_ids) == 2
    assert mails["ann@example.com"]["Subject"] == "Lamp 1 now 90.00 EUR"
    assert "Down 10.0% from 100.0." in mails["ann@example.com"].get_body(
        ("plain",)).get_content()
    assert mails["dana@example.com"]["Subject"] == "Lamp 4 now 80.00 EUR"
    assert _run(client, admin, "price_drop", "ann")["status"] == "completed"

    # the same drop again does not message ann twice (re-entry cooldown of the journey)
    assert client.put("/v1/items/i1", json={**dropped, "price": 70.0},
                      headers=admin).status_code == 200
    messaging.run_once()
    clock[0] += timedelta(hours=24)
    messaging.run_once()
    assert len(sink.handler.message_ids) == 2


def test_back_in_stock_starts_for_viewers_and_other_tenants_see_nothing(
    client: TestClient, tenant_a: TenantKeys, tenant_b: TenantKeys, messaging: MessagingRuntime,
    clock: list[datetime],
) -> None:
    admin = tenant_a.headers("admin")
    _shop(client, tenant_a, ("eve", "fay"))
    _shop(client, tenant_b, ("eve",))
    _view(client, tenant_a, "eve", "i2", clock[0] - timedelta(days=3))  # i2 is out of stock
    _view(client, tenant_b, "eve", "i2", clock[0] - timedelta(days=3))
    # enabled after the view: the one-time backfill finds it in the event store
    assert client.post("/v1/messaging/journeys/back_in_stock/enable",
                       headers=admin).status_code == 200
    assert client.patch("/v1/items/i2", json={"available": True},
                        headers=admin).status_code == 200
    assert client.patch("/v1/items/i2", json={"available": True},
                        headers=tenant_b.headers("admin")).status_code == 200
    messaging.run_once()

    run = _run(client, admin, "back_in_stock", "eve")
    assert run is not None and run["exit_reason"] is None
    assert _run(client, admin, "back_in_stock", "fay") is None
    assert _run(client, tenant_b.headers("admin"), "back_in_stock", "eve") is None
    [message] = messaging.state.outbox.for_user("default", "eve")
    assert (message.channel, message.template) == ("push", "back_in_stock")
    assert message.context["event"]["type"] == "item.back_in_stock"
    assert message.context["event"]["item_title"] == "Lamp 2"
    assert messaging.state.outbox.for_user("globex", "eve") == []


def test_without_an_item_journey_writes_are_not_compared(
    client: TestClient, tenant_a: TenantKeys, messaging: MessagingRuntime,
) -> None:
    _shop(client, tenant_a, ("ann",))
    assert client.patch("/v1/items/i1", json={"price": 10.0},
                        headers=tenant_a.headers("admin")).status_code == 200
    assert messaging.state.item_changes.claim(messaging.clock(), limit=10,
                                              lease=timedelta(minutes=1)) == []


def test_erasure_forgets_the_persons_views(
    client: TestClient, tenant_a: TenantKeys, messaging: MessagingRuntime, clock: list[datetime],
) -> None:
    admin = tenant_a.headers("admin")
    _shop(client, tenant_a, ("ann",))
    assert client.post("/v1/messaging/journeys/price_drop/enable",
                       headers=admin).status_code == 200
    _view(client, tenant_a, "ann", "i1", clock[0] - timedelta(hours=1))
    since = clock[0] - timedelta(days=1)
    assert messaging.state.item_views.viewers("default", "i1", since, limit=10) == ["ann"]
    messaging.state.forget("default", ["ann"])
    assert messaging.state.item_views.viewers("default", "i1", since, limit=10) == []


def test_a_change_older_than_a_day_is_dropped_unhandled(
    client: TestClient, tenant_a: TenantKeys, messaging: MessagingRuntime, clock: list[datetime],
) -> None:
    admin = tenant_a.headers("admin")
    _shop(client, tenant_a, ("ann",))
    assert client.post("/v1/messaging/journeys/back_in_stock/enable",
                       headers=admin).status_code == 200
    _view(client, tenant_a, "ann", "i2", clock[0] - timedelta(hours=1))
    messaging.state.item_changes.record([ItemChange(
        "default", "i2", BACK_IN_STOCK, clock[0] - timedelta(days=1, minutes=1), title="Lamp 2")])
    messaging.run_once()
    assert _run(client, admin, "back_in_stock", "ann") is None
    fresh = ItemChange("default", "i2", BACK_IN_STOCK, clock[0], title="Lamp 2")
    messaging.state.item_changes.record([fresh])
    messaging.run_once()
    assert _run(client, admin, "back_in_stock", "ann")["status"] == "completed"
