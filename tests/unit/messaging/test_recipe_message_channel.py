"""The "add a message channel" recipe of docs/CONTRIBUTING.md, followed from outside the
package: a sender with ``send`` / ``close`` and its ``consent_purpose``, registered under a
channel name, sends a template's message to people who consented to that purpose and to nobody
else; the same sender without a purpose is refused at registration."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from personify.domain.errors import ConfigurationError
from personify.domain.users import User
from personify.messaging.channels import PermanentSendError
from personify.messaging.guardrails import FrequencyCap, Guardrails
from personify.messaging.outbox import OutboxWorker, new_message
from personify.messaging.records import DeliveryStatus, OutboxMessage
from personify.messaging.templates import MessageTemplate, RenderedMessage

from .conftest import in_memory


class SmsSender:
    """Step 1 of the recipe: the channel's sender (here it keeps what a gateway would get)."""

    consent_purpose: str | None = "sms_marketing"

    def __init__(self) -> None:
        self.outbox: list[tuple[str, str]] = []

    def send(self, message: OutboxMessage, rendered: RenderedMessage, user: User) -> None:
        phone = user.properties.get("phone")
        if not phone:
            raise PermanentSendError(f"user {user.user_id!r} has no phone number")
        self.outbox.append((str(phone), rendered.text))

    def close(self) -> None:
        return None


PEOPLE = {
    "ann": User(user_id="ann", profile={"name": "Ann"}, properties={"phone": "+4915100000"}),
    "bob": User(user_id="bob", profile={"name": "Bob"}, properties={"phone": "+4915100001"}),
}
TEMPLATE = MessageTemplate(name="flash", channel="sms", recommendations=0,
                           variants=[{"subject": "-", "text": "Hi {{ user.name }}: -20% today"}])


@pytest.fixture
def stores() -> Any:
    """The in-memory adapters only: these tests are about channels, not storage."""
    return in_memory()


def _worker(stores: Any, clock: Any, sms: SmsSender, consents: set[tuple[str, str]]) -> Any:
    return OutboxWorker(  # step 2: register it under its channel name
        store=stores.outbox, templates=lambda t, n: TEMPLATE, users=lambda t, u: PEOPLE.get(u),
        senders={"sms": sms}, consent=lambda t, u, p: (u, p) in consents,
        suppressions=stores.suppressions, clock=clock, lease=timedelta(minutes=1),
        guardrails=Guardrails(caps=FrequencyCap({}), quiet_hours=None),
        purposes=("email_marketing", "push_marketing", "sms_marketing"),  # consent_purposes
    )


def test_a_new_channel_sends_only_with_its_own_consent(stores: Any, clock: Any) -> None:
    sms = SmsSender()
    worker = _worker(stores, clock, sms, {("ann", "sms_marketing"), ("bob", "email_marketing")})
    for user in ("ann", "bob"):
        stores.outbox.enqueue(new_message("t", user, "flash", dedup_key=f"flash-{user}",
                                          channel="sms", now=clock()))
    assert worker.run_until_idle() == 2
    assert sms.outbox == [("+4915100000", "Hi Ann: -20% today")]
    [bob] = stores.outbox.for_user("t", "bob")
    assert (bob.status, bob.last_error) == (DeliveryStatus.SUPPRESSED,
                                            "no consent for sms_marketing")
    worker.close()


def test_the_new_channel_without_a_purpose_is_refused(stores: Any, clock: Any) -> None:
    sms = SmsSender()
    sms.consent_purpose = None
    with pytest.raises(ConfigurationError, match="'sms'"):
        _worker(stores, clock, sms, set())
