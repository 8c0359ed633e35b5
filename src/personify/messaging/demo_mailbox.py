"""The demo's mailbox: the ``email`` channel of ``personify demo`` when no SMTP relay is
configured. It keeps each rendered message (recipient, subject, HTML and text, with its tracked
links already signed) in the demo's own database, where the dashboard's "Sent messages" page
shows it. Nothing leaves the machine, and it needs nothing beyond the core install.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from personify.domain.users import User
from personify.messaging.records import OutboxMessage
from personify.messaging.templates import RenderedMessage

MAILBOX_KIND = "demo_mail"
"""The kind the messages are kept under in the definitions store."""
KEEP = 500
"""The newest messages kept per tenant; older ones are dropped as new ones arrive."""


class MailboxStore(Protocol):
    """The part of the definitions store the mailbox uses (documents by tenant, kind, name)."""

    def put(
        self, tenant: str, kind: str, name: str, body: Mapping[str, Any], *, enabled: bool
    ) -> Any: ...

    def list(self, tenant: str, kind: str, *, enabled_only: bool = False) -> list[Any]: ...

    def delete(self, tenant: str, kind: str, name: str) -> bool: ...


def demo_address(user: User) -> str:
    """Where the demo 'sends': the person's e-mail, else a reserved example address."""
    return user.profile.email or f"customer-{user.user_id}@example.com"


class DemoMailbox:
    """A :class:`~personify.messaging.channels.Sender` recording messages instead of sending."""

    consent_purpose: str | None = "email_marketing"

    def __init__(
        self,
        store: MailboxStore,
        *,
        sender: str = "personify@localhost",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        keep: int = KEEP,
    ) -> None:
        self.store, self.sender, self.clock, self.keep = store, sender, clock, keep
        self._since_prune = 0

    def send(self, message: OutboxMessage, rendered: RenderedMessage, user: User) -> None:
        now = self.clock()
        body = {
            "message_id": message.message_id,
            "user_id": user.user_id,
            "to": demo_address(user),
            "from": self.sender,
            "subject": rendered.subject,
            "preheader": rendered.preheader,
            "html": rendered.html,
            "text": rendered.text,
            "template": message.template,
            "campaign": message.context.get("campaign"),
            "variant": message.context.get("variant"),
            "journey": message.context.get("journey"),
            "sent_at": now.isoformat(),
        }
        # names sort by time: the newest last; the message id keeps a resend in one entry
        name = f"{now:%Y%m%dT%H%M%S%f}-{message.message_id}"[:64]
        for old in self.store.list(message.tenant, MAILBOX_KIND) if message.in_doubt else []:
            if old.body.get("message_id") == message.message_id:
                self.store.delete(message.tenant, MAILBOX_KIND, old.name)
        self.store.put(message.tenant, MAILBOX_KIND, name, body, enabled=True)
        self._since_prune += 1
        if self._since_prune >= 50:
            self._since_prune = 0
            self.prune(message.tenant)

    def prune(self, tenant: str) -> int:
        """Drop all but the newest :data:`KEEP` messages; returns how many were dropped."""
        stored = self.store.list(tenant, MAILBOX_KIND)
        old = stored[: max(0, len(stored) - self.keep)]
        for entry in old:
            self.store.delete(tenant, MAILBOX_KIND, entry.name)
        return len(old)

    def close(self) -> None:
        return None


def mailbox(store: MailboxStore, tenant: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest recorded messages first, at most ``limit``."""
    stored = store.list(tenant, MAILBOX_KIND)
    return [dict(s.body) for s in reversed(stored[-limit:])]
