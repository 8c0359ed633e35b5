""""New for you" through the messaging journeys: a new post in a group reaches its members, a new
episode the series' followers, a new event the people on its topics; never the author, people
without consent, or anyone for an event already full; at each person's best time through the
outbox (caps and quiet hours apply at sending), rendered from the built-in sandboxed template in
their language. Any hour: the injected clock reads 03:00 and 23:00 UTC."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from _clocked_app import any_hour_clock, clocked_app, opt_out_settings  # noqa: F401 - fixtures
from fastapi import FastAPI
from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from conftest import TenantKeys

_seq = iter(range(1_000_000))


def _user(client: TestClient, keys: TenantKeys, uid: str, **profile: Any) -> None:
    r = client.put(f"/v1/users/{uid}", json={"profile": {"email": f"{uid}@example.org",
                                                         **profile}}, headers=keys.headers())
    assert r.status_code in (200, 201), r.text
    r = client.post(f"/v1/users/{uid}/consents", headers=keys.headers(), json={
        "purpose": "email_marketing", "state": "granted", "text_version": "v1"})
    assert r.status_code == 201, r.text


def _like(client: TestClient, keys: TenantKeys, uid: str, item: str, now: datetime) -> None:
    event = {"event_id": f"nfy{next(_seq)}", "type": "like", "user_id": uid, "item_id": item,
             "timestamp": (now - timedelta(hours=1)).isoformat()}
    assert client.post("/v1/events", json=event, headers=keys.headers("ingest")).status_code \
        in (200, 201, 202)


def _queued(app: FastAPI, uid: str) -> list[Any]:
    return [m for m in app.state.runtime.messaging.state.outbox.for_user("default", uid)
            if m.template == "new_for_you"]


def test_new_items_reach_the_people_they_are_for(client: TestClient, tenant_a: TenantKeys,
                                                 app: FastAPI, clock: list[datetime]) -> None:
    now = clock[0]
    admin = tenant_a.headers()
    messaging = app.state.runtime.messaging
    r = client.post("/v1/messaging/journeys/new_for_you/enable", headers=admin)
    assert r.status_code == 200, r.text
    _user(client, tenant_a, "member", name="Мария", language="ru", time_zone="Europe/Moscow")
    _user(client, tenant_a, "fan", name="Fan", time_zone="America/New_York")
    _user(client, tenant_a, "topical", name="Topi", skills=["qiskit"], time_zone="UTC")
    _user(client, tenant_a, "writer", name="Writer")
    _user(client, tenant_a, "stranger", name="Stranger", skills=["cooking"])
    for iid, kind in (("g1", "group"), ("show", "series")):
        assert client.put(f"/v1/items/{iid}", json={"type": kind, "title": iid.upper()},
                          headers=admin).status_code == 200
    _like(client, tenant_a, "member", "g1", now)
    _like(client, tenant_a, "writer", "g1", now)
    _like(client, tenant_a, "fan", "show", now)
    # the writer posts in the group; an episode of the show; an event on qiskit; a full event
    start = (now + timedelta(days=5)).isoformat()
    for iid, body in [
        ("p1", {"type": "post", "title": "Hello group", "author_id": "writer",
                "properties": {"group_id": "g1", "url": "https://example.org/p1"}}),
        ("e1", {"type": "episode", "title": "Episode 1", "properties": {"series_id": "show"}}),
        ("ev", {"type": "event", "title": "Qiskit night", "tags": ["qiskit"],
                "properties": {"starts_at": start, "time_zone": "UTC"}}),
        ("full", {"type": "event", "title": "Full", "tags": ["qiskit"],
                  "properties": {"starts_at": start, "capacity": 1, "registered": 1}}),
        ("prod", {"type": "product", "title": "Not announced", "tags": ["qiskit"]}),
    ]:
        assert client.put(f"/v1/items/{iid}", json=body, headers=admin).status_code == 200
    # a retried write of the same item announces nothing twice
    post = {"type": "post", "title": "Hello group", "author_id": "writer",
            "properties": {"group_id": "g1", "url": "https://example.org/p1"}}
    assert client.put("/v1/items/p1", json=post, headers=admin).status_code == 200
    assert messaging.process_item_changes(now) >= 3
    assert messaging.process_item_changes(now) == 0
    for _ in range(3):  # best-time waits (within 12 h) then the send step
        clock[0] += timedelta(hours=6)
        messaging.tick(clock[0])
    member, fan, topical = (_queued(app, u) for u in ("member", "fan", "topical"))
    assert [m.context["event"]["item_id"] for m in member] == ["p1"]
    assert [m.context["event"]["item_id"] for m in fan] == ["e1"]
    assert [m.context["event"]["item_id"] for m in topical] == ["ev"]
    assert _queued(app, "writer") == [] and _queued(app, "stranger") == []
    # rendered in the member's language from the built-in template, naming the group
    shown = client.post("/v1/messaging/templates/new_for_you/preview", headers=admin,
                        json={"user_id": "member", "event": member[0].context["event"]})
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["language"] == "ru" and body["subject"] == "Новое для вас: Hello group"
    assert "G1" in body["text"] and "https://example.org/p1" in body["text"]
    # an email-marketing opt-out stops the next ones
    r = client.post("/v1/users/topical/consents/email_marketing:deny", json={}, headers=admin)
    assert r.status_code in (200, 201), r.text
    assert client.put("/v1/items/ev2", headers=admin, json={
        "type": "event", "title": "Another", "tags": ["qiskit"],
        "properties": {"starts_at": (clock[0] + timedelta(days=3)).isoformat()}}).status_code \
        == 200
    messaging.process_item_changes(clock[0])
    for _ in range(3):
        clock[0] += timedelta(hours=6)
        messaging.tick(clock[0])
    assert [m.context["event"]["item_id"] for m in _queued(app, "topical")] == ["ev"]


def test_no_audience_without_a_new_for_you_journey(client: TestClient, tenant_a: TenantKeys,
                                                   app: FastAPI, clock: list[datetime]) -> None:
    """Another item-update journey (price_drop) makes writes compared, but a new post is
    announced to nobody and its audience is not computed."""
    admin = tenant_a.headers()
    messaging = app.state.runtime.messaging
    asked: list[str] = []
    real = messaging.new_item_audience
    messaging.new_item_audience = lambda *a: (asked.append(a[1]), real(*a))[1]
    assert client.post("/v1/messaging/journeys/price_drop/enable",
                       headers=admin).status_code == 200
    _user(client, tenant_a, "reader", skills=["qiskit"])
    assert client.put("/v1/items/p9", json={"type": "post", "title": "x", "tags": ["qiskit"]},
                      headers=admin).status_code == 200
    assert messaging.process_item_changes(clock[0]) == 0 and asked == []
    assert client.post("/v1/messaging/journeys/new_for_you/enable",
                       headers=admin).status_code == 200
    assert client.put("/v1/items/p10", json={"type": "post", "title": "y", "tags": ["qiskit"]},
                      headers=admin).status_code == 200
    assert messaging.process_item_changes(clock[0]) == 1 and asked == ["p10"]
