"""Consent fails closed: every message channel declares its consent purpose, a channel without
one cannot be registered (ConfigurationError at start-up naming it), and a marketing message
whose purpose is unknown is not sent (recorded as skipped, with the reason)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from personify.api import create_app
from personify.domain.errors import ConfigurationError
from personify.domain.users import User
from personify.messaging.guardrails import FrequencyCap, Guardrails
from personify.messaging.outbox import OutboxWorker, new_message
from personify.messaging.records import DeliveryStatus, OutboxMessage
from personify.messaging.templates import MessageTemplate, RenderedMessage
from personify.messaging.webhook_channels import ChannelDirectory, WebhookChannel
from personify.settings import Settings, WebhookChannelSetting

from .conftest import in_memory

TEMPLATE = MessageTemplate(name="news", recommendations=0,
                           variants=[{"subject": "Hi {{ user.name }}", "text": "news"}])
PEOPLE = {"ann": User(user_id="ann", profile={"name": "Ann", "email": "ann@example.com"})}


@dataclass
class Recorder:
    consent_purpose: str | None = "email_marketing"
    sent: list[str] = field(default_factory=list)

    def send(self, message: OutboxMessage, rendered: RenderedMessage, user: User) -> None:
        self.sent.append(message.message_id)

    def close(self) -> None:
        return None


@pytest.fixture
def stores() -> Any:
    """The in-memory adapters only: these tests are about channels, not storage."""
    return in_memory()


def _worker(stores: Any, clock: Any, senders: dict[str, Any], **extra: Any) -> OutboxWorker:
    return OutboxWorker(
        store=stores.outbox, templates=lambda t, n: TEMPLATE, users=lambda t, u: PEOPLE.get(u),
        senders=senders, consent=lambda t, u, p: True, suppressions=stores.suppressions,
        guardrails=Guardrails(caps=FrequencyCap({}), quiet_hours=None), clock=clock, **extra,
    )


@pytest.mark.parametrize("purpose", [None, "", "Not a purpose"])
def test_a_channel_without_a_consent_purpose_cannot_be_registered(
    stores: Any, clock: Any, purpose: str | None
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        _worker(stores, clock, {"email": Recorder(), "sms": Recorder(consent_purpose=purpose)})
    assert refused.value.field == "channels.sms.consent_purpose"
    assert "'sms'" in refused.value.message


def test_threads_senders_are_checked_too(stores: Any, clock: Any) -> None:
    worker = _worker(stores, clock, {"email": Recorder()}, concurrency=2,
                     make_senders=lambda: {"email": Recorder(consent_purpose=None)})
    stores.outbox.enqueue(new_message("t", "ann", "news", dedup_key="k", now=clock()))
    with pytest.raises(ConfigurationError) as refused:
        worker.run_once()
    assert refused.value.field == "channels.email.consent_purpose"
    worker.close()


def test_a_message_whose_purpose_is_unknown_is_not_sent(stores: Any, clock: Any) -> None:
    email = Recorder()
    # a tenant's webhook channel stored before purposes were required: no purpose
    legacy = WebhookChannel.model_validate({"name": "crm", "url": "https://hooks.example.com/x",
                                            "secret": "s" * 24, "consent_purpose": None})
    directory = ChannelDirectory(
        [], lambda tenant: [legacy], resolver=lambda host, port: ["93.184.216.34"],
        transport=httpx.MockTransport(lambda request: httpx.Response(204)),
    )
    worker = _worker(stores, clock, {"email": email}, channels=directory,
                     purposes=("email_marketing", "push_marketing"))
    typo = new_message("t", "ann", "news", dedup_key="typo", purpose="emial_marketing",
                       now=clock())
    on_crm = new_message("t", "ann", "news", dedup_key="crm", channel="crm", now=clock())
    fine = new_message("t", "ann", "news", dedup_key="fine", now=clock())
    receipt = new_message("t", "ann", "news", dedup_key="receipt", channel="crm",
                          transactional=True, now=clock())
    for message in (typo, on_crm, fine):
        stores.outbox.enqueue(message)
    assert worker.run_until_idle() == 3

    skipped = {m.message_id: m for m in stores.outbox.for_user("t", "ann")}
    assert skipped[typo.message_id].status == DeliveryStatus.SUPPRESSED
    assert skipped[typo.message_id].last_error == (
        "skipped: unknown consent purpose 'emial_marketing'")
    assert skipped[on_crm.message_id].status == DeliveryStatus.SUPPRESSED
    assert skipped[on_crm.message_id].last_error == (
        "skipped: channel 'crm' declares no consent purpose")
    assert email.sent == [fine.message_id]
    assert worker.stats.unknown_purpose == 2
    # transactional messages need no consent, so no purpose either: not skipped for it
    stores.outbox.enqueue(receipt)
    worker.run_until_idle()
    assert stores.outbox.get(receipt.message_id).status == DeliveryStatus.SENT
    worker.close()
    directory.close()


def test_a_settings_channel_without_a_purpose_stops_the_start(tmp_path: Any) -> None:
    channel = WebhookChannelSetting(name="crm", url="https://hooks.example.com/x",  # type: ignore[arg-type]
                                    secret="s" * 24, consent_purpose=None)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", admin_key="a" * 32,
                        tracking_secret="t" * 24, webhook_channels=[channel])
    with pytest.raises(ConfigurationError) as refused:
        create_app(settings)
    assert refused.value.field == "webhook_channels.0.consent_purpose"
    assert "'crm'" in refused.value.message
