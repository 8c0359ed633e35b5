"""The in-app inbox: a channel that stores messages the client app pulls through the API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from personify.domain.consents import Purpose
from personify.domain.users import User
from personify.messaging.ports import InboxStore
from personify.messaging.records import InboxEntry, OutboxMessage
from personify.messaging.templates import RenderedMessage


class InboxSender:
    """Channel ``inbox``: one entry per outbox message (the message id is the entry id)."""

    consent_purpose: str | None = Purpose.PUSH_MARKETING.value

    def __init__(self, store: InboxStore, *, clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.clock = clock or (lambda: datetime.now(UTC))

    def send(self, message: OutboxMessage, rendered: RenderedMessage, user: User) -> None:
        self.store.add(
            InboxEntry(
                entry_id=message.message_id,
                tenant=message.tenant,
                user_id=message.user_id,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                created_at=self.clock(),
                data={"template": message.template},
            )
        )

    def close(self) -> None:
        return None


def list_inbox(
    store: InboxStore, tenant: str, user_id: str, *, unread_only: bool = False, limit: int = 50
) -> list[InboxEntry]:
    """The person's inbox, newest first."""
    return store.list(tenant, user_id, unread_only=unread_only, limit=min(max(limit, 1), 200))


def mark_read(
    store: InboxStore,
    tenant: str,
    user_id: str,
    entry_ids: Sequence[str],
    *,
    now: datetime | None = None,
) -> int:
    """Mark entries read; returns how many changed (entries of other people are ignored)."""
    return store.mark_read(tenant, user_id, list(entry_ids)[:200], now or datetime.now(UTC))
