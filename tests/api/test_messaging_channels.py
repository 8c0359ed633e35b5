"""Webhook channels through the settings and ``/v1/messaging/channels``: validation with errors
naming the field, a secret that is stored, used to sign and never returned, settings channels
that tenants can neither shadow nor delete, consent per channel, and a restocked item announced
through a signed webhook to a local receiver."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.api import create_app
from personify.domain.errors import ConfigurationError
from personify.messaging.webhooks import verify_signature
from personify.runtime.messaging import MessagingRuntime
from personify.runtime.messaging_wiring import configured_channels
from personify.settings import Settings, WebhookChannelSetting
from personify.storage.registry import Stores
from personify.testing.webhook_sink import WebhookSink

if TYPE_CHECKING:
    from conftest import TenantKeys

TRACKING = "tracking-secret-for-the-api-tests-0123"
TENANT_SECRET = "tenant-webhook-secret-0123456789"
OPERATOR_SECRET = "operator-webhook-secret-9876543210"
_ids = itertools.count()


@pytest.fixture
def receiver() -> Iterator[WebhookSink]:
    with WebhookSink() as sink:
        yield sink


@pytest.fixture
def settings(database_url: str) -> Settings:
    """A development setup: plain http and the loopback receiver explicitly allowed."""
    operator = WebhookChannelSetting(name="chat", url="https://chat.example.com/hook",
                                     secret=OPERATOR_SECRET)  # type: ignore[arg-type]
    return Settings(database_url=database_url, demo=False, tracking_secret=TRACKING,
                    webhook_channels=[operator], webhook_allow_http=True,
                    webhook_allow_hosts=["127.0.0.1"])


@pytest.fixture
def messaging(app: FastAPI) -> MessagingRuntime:
    runtime: MessagingRuntime = app.state.runtime.messaging
    noon = (datetime.now(UTC) - timedelta(days=1)).replace(hour=12, minute=0, second=0,
                                                           microsecond=0)
    runtime.clock = lambda: noon
    return runtime


def test_channel_crud_never_shows_the_secret(
    client: TestClient, admin: dict[str, str], tenant_b: TenantKeys
) -> None:
    body = {"url": "https://push.example.com/hook", "secret": TENANT_SECRET, "timeout_s": 3}
    created = client.put("/v1/messaging/channels/push", json=body, headers=admin)
    assert created.status_code == 200, created.text
    assert created.json() == {
        "name": "push", "url": "https://push.example.com/hook", "timeout_s": 3.0,
        "consent_purpose": "push_marketing", "secret_set": True, "source": "api",
        "updated_at": None}
    listed = client.get("/v1/messaging/channels", headers=admin)
    assert [(c["name"], c["source"]) for c in listed.json()["channels"]] == [
        ("chat", "settings"), ("push", "api")]
    one = client.get("/v1/messaging/channels/push", headers=admin)
    assert one.status_code == 200 and one.json()["updated_at"] is not None
    for response in (created, listed, one):
        assert TENANT_SECRET not in response.text and OPERATOR_SECRET not in response.text
    # another tenant sees the operator's channel only
    other = client.get("/v1/messaging/channels", headers=tenant_b.headers("admin")).json()
    assert [c["name"] for c in other["channels"]] == ["chat"]
    # a change without the secret keeps the stored one
    moved = client.put("/v1/messaging/channels/push", json={"url": "https://p2.example.com/h"},
                       headers=admin)
    assert moved.status_code == 200 and moved.json()["url"] == "https://p2.example.com/h"
    assert client.delete("/v1/messaging/channels/push", headers=admin).status_code == 204
    assert client.get("/v1/messaging/channels/push", headers=admin).status_code == 404
    assert client.delete("/v1/messaging/channels/push", headers=admin).status_code == 404
    refused = client.delete("/v1/messaging/channels/chat", headers=admin)
    assert refused.status_code == 409 and refused.json()["error"]["field"] == "name"
    assert client.get("/v1/messaging/channels",
                      headers=tenant_b.headers("serve")).status_code == 403


def test_a_null_name_is_the_url_name_and_the_documented_bodies_leave_it_out(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = {"name": None, "url": "https://push.example.com/hook", "secret": TENANT_SECRET}
    saved = client.put("/v1/messaging/channels/push", json=body, headers=admin)
    assert (saved.status_code, saved.json()["name"]) == (200, "push"), saved.text
    components = client.get("/openapi.json").json()["components"]["schemas"]
    for body_schema in ("MessageTemplateBody", "JourneyDefinitionBody"):
        assert "name" not in components[body_schema].get("required", []), body_schema
    assert "name" in components["MessageTemplate"]["required"]  # answers always carry it


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("push", {"url": "ftp://push.example.com/h", "secret": TENANT_SECRET}, "url"),
        ("push", {"url": "https://10.1.2.3/h", "secret": TENANT_SECRET}, "url"),
        ("push", {"url": "https://169.254.169.254/latest", "secret": TENANT_SECRET}, "url"),
        ("push", {"url": "https://[::1]/h", "secret": TENANT_SECRET}, "url"),
        ("push", {"url": "https://localhost/h", "secret": TENANT_SECRET}, "url"),
        ("push", {"url": "https://u:p@push.example.com/h", "secret": TENANT_SECRET}, "url"),
        ("push", {"url": "https://push.example.com/h", "secret": "short"}, "secret"),
        ("push", {"url": "https://push.example.com/h"}, "secret"),
        ("push", {"url": "https://push.example.com/h", "secret": TENANT_SECRET,
                  "timeout_s": 120}, "timeout_s"),
        ("push", {"url": "https://push.example.com/h", "secret": TENANT_SECRET,
                  "retries": 3}, "retries"),
        ("push", {"url": "https://push.example.com/h", "secret": TENANT_SECRET,
                  "consent_purpose": None}, "consent_purpose"),  # consent fails closed
        ("email", {"url": "https://push.example.com/h", "secret": TENANT_SECRET}, "name"),
        ("Push", {"url": "https://push.example.com/h", "secret": TENANT_SECRET}, "name"),
        ("chat", {"url": "https://push.example.com/h", "secret": TENANT_SECRET}, "name"),
    ],
)
def test_invalid_channels_are_refused_naming_the_field(
    client: TestClient, admin: dict[str, str], name: str, body: dict[str, Any], field: str
) -> None:
    response = client.put(f"/v1/messaging/channels/{name}", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert TENANT_SECRET not in response.text
    assert client.get(f"/v1/messaging/channels/{name}", headers=admin).status_code in (200, 404)
    assert name not in [c["name"] for c in client.get(
        "/v1/messaging/channels", headers=admin).json()["channels"] if c["source"] == "api"]


def test_production_settings_refuse_http_and_name_the_entry(
    database_url: str, stores: Stores, tenant_a: TenantKeys
) -> None:
    def settings(*urls: str, **extra: Any) -> Settings:
        entries = [WebhookChannelSetting(name="push", url=url,
                                         secret=OPERATOR_SECRET)  # type: ignore[arg-type]
                   for url in urls]
        return Settings(database_url=database_url, demo=False, tracking_secret=TRACKING,
                        webhook_channels=entries, **extra)

    with pytest.raises(ConfigurationError) as info:  # the app does not start
        create_app(settings("http://push.example.com/hook"), stores=stores)
    assert info.value.field == "webhook_channels.0.url"
    for bad in ("https://192.168.0.10/hook", "https://[fe80::1]/hook", "https:///nohost"):
        with pytest.raises(ConfigurationError) as info:
            configured_channels(settings(bad))
        assert info.value.field == "webhook_channels.0.url", bad
    with pytest.raises(ConfigurationError) as info:
        configured_channels(settings("https://a.example.com/h", "https://b.example.com/h"))
    assert info.value.field == "webhook_channels.1.name"
    allowed = settings("http://crm.internal/h", webhook_allow_http=True,
                       webhook_allow_hosts=["crm.internal"])
    assert [c.url for c in configured_channels(allowed)] == ["http://crm.internal/h"]
    assert OPERATOR_SECRET not in repr(allowed)


def _restock_shop(client: TestClient, keys: TenantKeys, at: datetime) -> None:
    admin = keys.headers("admin")
    assert client.put("/v1/items/lamp", json={"title": "Lamp", "price": 40.0,
                                              "available": False}, headers=admin).status_code == 200
    for person, purposes in (("eve", ("push_marketing",)), ("fay", ()), ("gus", ())):
        assert client.put(f"/v1/users/{person}", json={"profile": {"name": person.title()}},
                          headers=admin).status_code == 200
        for purpose in purposes:
            assert client.post(f"/v1/users/{person}/consents",
                               json={"purpose": purpose, "state": "granted"},
                               headers=admin).status_code == 201
    for person in ("eve", "fay"):  # fay viewed it too but never agreed to push messages
        event = {"event_id": f"ch-{next(_ids)}", "type": "view", "user_id": person,
                 "item_id": "lamp", "timestamp": (at - timedelta(hours=3)).isoformat()}
        assert client.post("/v1/events", json=event,
                           headers=keys.headers("ingest")).status_code == 200


def test_a_restock_is_pushed_through_a_signed_webhook(
    client: TestClient, tenant_a: TenantKeys, messaging: MessagingRuntime,
    receiver: WebhookSink,
) -> None:
    url, hook = receiver.url, receiver
    admin = tenant_a.headers("admin")
    assert client.put("/v1/messaging/channels/push", json={"url": url, "secret": TENANT_SECRET},
                      headers=admin).status_code == 200
    template = {"channel": "push", "recommendations": 0, "variants": [
        {"subject": "{{ event.item_title }} is back", "text": "Get it for {{ event.price }}"}]}
    assert client.put("/v1/messaging/templates/back_in_stock", json=template,
                      headers=admin).status_code == 200
    assert client.post("/v1/messaging/journeys/back_in_stock/enable",
                       headers=admin).status_code == 200
    _restock_shop(client, tenant_a, messaging.clock())
    assert client.patch("/v1/items/lamp", json={"available": True},
                        headers=admin).status_code == 200
    messaging.run_once()

    deadline = time.monotonic() + 5
    while not hook.received and time.monotonic() < deadline:
        time.sleep(0.02)
    [(headers, body)] = hook.received  # eve only: fay has no push consent, gus never looked
    timestamp = int(headers["X-Personify-Timestamp"])
    assert verify_signature(TENANT_SECRET.encode(), timestamp, body,
                            headers["X-Personify-Signature"], now=time.time())
    payload = orjson.loads(body)
    assert (payload["user_id"], payload["channel"], payload["subject"]) == (
        "eve", "push", "Lamp is back")
    assert payload["text"] == "Get it for 40.0"
    statuses = {m.user_id: (m.status, m.last_error)
                for u in ("eve", "fay") for m in messaging.state.outbox.for_user("default", u)}
    assert statuses == {"eve": ("sent", None)}  # fay's run never started (no consent)
