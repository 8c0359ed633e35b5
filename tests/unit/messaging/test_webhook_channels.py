"""Webhook channel configuration: validation, a directory per tenant, and the worker sending
through it with the channel's own consent purpose."""

from __future__ import annotations

from datetime import timedelta

import httpx
import orjson
import pytest

from personify.domain.errors import InvalidInput
from personify.domain.users import User
from personify.messaging.guardrails import FrequencyCap, Guardrails
from personify.messaging.outbox import OutboxWorker, new_message
from personify.messaging.records import DeliveryStatus
from personify.messaging.templates import MessageTemplate
from personify.messaging.webhook_channels import (
    ChannelDirectory,
    WebhookChannel,
    parse_channel,
)
from personify.messaging.webhooks import verify_signature

SECRET = "s" * 24


def _channel(
    name: str, url: str = "https://hooks.example.com/x", **extra: object
) -> WebhookChannel:
    return parse_channel({"name": name, "url": url, "secret": SECRET, **extra}, allow_http=False)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"name": "crm", "url": "http://hooks.example.com/x", "secret": SECRET},
         "webhook_channels.0.url"),
        ({"name": "crm", "url": "https://127.0.0.1/x", "secret": SECRET}, "webhook_channels.0.url"),
        ({"name": "crm", "url": "https://[::ffff:10.0.0.1]/x", "secret": SECRET},
         "webhook_channels.0.url"),
        ({"name": "crm", "url": "https://hooks.example.com/x#f", "secret": SECRET},
         "webhook_channels.0.url"),
        ({"name": "crm", "url": "https://hooks.example.com/x", "secret": "x" * 15},
         "webhook_channels.0.secret"),
        ({"name": "inbox", "url": "https://hooks.example.com/x", "secret": SECRET},
         "webhook_channels.0.name"),
        ({"name": "crm", "url": "https://hooks.example.com/x", "secret": SECRET,
          "consent_purpose": "Not A Purpose"}, "webhook_channels.0.consent_purpose"),
        ({"name": "crm", "url": "https://hooks.example.com/x", "secret": SECRET,
          "consent_purpose": None}, "webhook_channels.0.consent_purpose"),
        (["not", "a", "mapping"], "webhook_channels.0"),
    ],
)
def test_invalid_channels_name_the_field(document: object, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_channel(document, allow_http=False, field_prefix="webhook_channels.0.")
    assert info.value.field == field
    assert SECRET not in str(info.value.message)


@pytest.mark.parametrize(
    "host",
    ["127.1", "2130706433", "0x7f.0.0.1", "0x7f000001", "LOCALHOST", "localhost.",
     "api.localhost", "[::1]", "[::ffff:7f00:1]", "0", "0.0.0.0", "10.1", "169.254.169.254"],
)
def test_loopback_and_private_spellings_are_refused_when_saved(host: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_channel({"name": "crm", "url": f"https://{host}/x", "secret": SECRET},
                      allow_http=False)
    assert info.value.field == "url"


def test_http_and_private_hosts_only_when_allowed() -> None:
    assert parse_channel({"name": "crm", "url": "http://hooks.example.com/x", "secret": SECRET},
                         allow_http=True).url == "http://hooks.example.com/x"
    allowed = parse_channel({"name": "crm", "url": "https://10.0.0.7/x", "secret": SECRET},
                            allow_http=False, allow_hosts=["10.0.0.7"])
    assert allowed.url == "https://10.0.0.7/x"
    public = allowed.public("settings")
    assert SECRET not in str(public) and public["secret_set"] is True
    assert SECRET not in repr(allowed)


def test_directory_per_tenant_and_rebuilt_senders() -> None:
    tenant_channels = {"a": [_channel("crm", "https://a.example.com/x")], "b": []}
    directory = ChannelDirectory([_channel("push")], lambda t: tenant_channels.get(t, []))
    assert directory.channel("b", "push") is not None  # settings channels serve every tenant
    assert directory.channel("b", "crm") is None
    first = directory.sender("a", "crm")
    assert first is not None and directory.sender("a", "crm") is first
    assert directory.purpose("a", "crm") == (True, "push_marketing")
    assert directory.purpose("a", "sms") == (False, None)
    tenant_channels["a"] = [_channel("crm", "https://a2.example.com/x")]
    second = directory.sender("a", "crm")
    assert second is not first and second.url.host == "a2.example.com"  # type: ignore[attr-defined]
    directory.close()


def test_worker_sends_through_a_tenant_channel_with_its_consent_purpose(stores, clock) -> None:
    posted: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posted.append(request)
        return httpx.Response(204)

    directory = ChannelDirectory(
        [], lambda t: [_channel("crm", consent_purpose="crm_updates")] if t == "t" else [],
        resolver=lambda host, port: ["93.184.216.34"], transport=httpx.MockTransport(handler),
    )
    asked: list[str] = []
    consents = {("ann", "crm_updates")}
    template = MessageTemplate(name="note", channel="crm", recommendations=0,
                               variants=[{"subject": "Hi {{ user.name }}", "text": "x"}])
    people = {u: User(user_id=u, profile={"name": u.title()}) for u in ("ann", "bob")}
    worker = OutboxWorker(
        store=stores.outbox, templates=lambda t, n: template, users=lambda t, u: people.get(u),
        senders={}, suppressions=stores.suppressions, clock=clock, channels=directory,
        consent=lambda t, u, p: asked.append(p) is None and (u, p) in consents,
        guardrails=Guardrails(caps=FrequencyCap({}), quiet_hours=None),
        lease=timedelta(minutes=1),
    )
    for user in ("ann", "bob"):
        stores.outbox.enqueue(new_message("t", user, "note", dedup_key=f"n-{user}",
                                          channel="crm", now=clock()))
    stores.outbox.enqueue(new_message("other", "ann", "note", dedup_key="n-o", channel="crm",
                                      now=clock()))
    assert worker.run_until_idle() == 3
    assert set(asked) == {"crm_updates"}
    statuses = {(m.tenant, m.user_id): (m.status, m.last_error)
                for t, u in (("t", "ann"), ("t", "bob"), ("other", "ann"))
                for m in stores.outbox.for_user(t, u)}
    assert statuses[("t", "ann")] == (DeliveryStatus.SENT, None)
    assert statuses[("t", "bob")] == (DeliveryStatus.SUPPRESSED, "no consent for crm_updates")
    assert statuses[("other", "ann")][0] == DeliveryStatus.FAILED  # no such channel there
    [request] = posted
    assert request.headers["host"] == "hooks.example.com"
    assert verify_signature(SECRET.encode(), int(request.headers["x-personify-timestamp"]),
                            request.content, request.headers["x-personify-signature"],
                            now=int(request.headers["x-personify-timestamp"]))
    assert orjson.loads(request.content)["subject"] == "Hi Ann"
    worker.close()
    directory.close()
