"""Persistence ports of the messaging library; adapters in ``sql_stores`` (PostgreSQL, a SQLite
deployment's messaging file, memory), opened by ``state_stores``.

Every method takes the tenant (or an id issued by the store) explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from personify.messaging.records import (
    DeliveryStatus,
    InboxEntry,
    JourneyRun,
    OutboxMessage,
    TrackedLink,
)


class OutboxStore(Protocol):
    """Durable queue of messages with leases; the single source of truth for delivery status."""

    def for_user(self, tenant: str, user_id: str) -> list[OutboxMessage]:
        """Every message queued or sent to the person (data-subject export)."""
        ...

    def delete_user(self, tenant: str, user_id: str) -> int:
        """Erasure: remove every record of the person; returns how many."""
        ...

    def enqueue(self, message: OutboxMessage) -> tuple[OutboxMessage, bool]:
        """Store ``message`` unless one with its (tenant, dedup_key) exists.

        Returns the stored message and whether it was created now.
        """
        ...

    def claim(
        self, worker: str, now: datetime, *, limit: int, lease: timedelta
    ) -> list[OutboxMessage]:
        """Atomically lease up to ``limit`` due messages: queued / deferred and due,
        or ``sending`` whose lease expired (``in_doubt=True`` when their send had started)."""
        ...

    def begin_send(
        self,
        message_id: str,
        claim_token: str,
        links: Mapping[str, TrackedLink] | None = None,
    ) -> bool:
        """Durably note that the channel is about to be called ("mark before"), together with
        the message's tracked ``links`` (one transaction); False when fenced off."""
        ...

    def mark(
        self,
        message_id: str,
        claim_token: str,
        status: DeliveryStatus,
        now: datetime,
        *,
        not_before: datetime | None = None,
        error: str | None = None,
        attempts: int | None = None,
    ) -> bool:
        """Record an outcome if ``claim_token`` still holds the lease; False when fenced off."""
        ...

    def get(self, message_id: str) -> OutboxMessage | None: ...

    def count_sent(
        self, tenant: str, user_id: str, channel: str, since: datetime, until: datetime
    ) -> int:
        """Non-transactional messages sent to one person on one channel in [since, until)."""
        ...

    def count_sent_many(
        self, tenant: str, channel: str, windows: Mapping[str, tuple[datetime, datetime]]
    ) -> dict[str, int]:
        """:meth:`count_sent` for many people, each with their own ``(since, until)``."""
        ...

    def counts(self, tenant: str | None = None) -> dict[str, int]:
        """How many messages are in each status."""
        ...

    def save_links(self, message_id: str, links: dict[str, TrackedLink]) -> None: ...

    def get_link(self, message_id: str, link_id: str) -> TrackedLink | None: ...


class SuppressionStore(Protocol):
    """Who unsubscribed from what (a channel, or ``*`` for every marketing message)."""

    def delete_user(self, tenant: str, user_id: str) -> int:
        """Erasure: remove every record of the person; returns how many."""
        ...

    def suppress(
        self, tenant: str, user_id: str, channel: str, now: datetime, reason: str
    ) -> None: ...

    def is_suppressed(self, tenant: str, user_id: str, channel: str) -> bool:
        """True when the person unsubscribed from ``channel`` or from everything (``*``)."""
        ...

    def lift(self, tenant: str, user_id: str, channel: str) -> bool: ...


class InboxStore(Protocol):
    def delete_user(self, tenant: str, user_id: str) -> int:
        """Erasure: remove every record of the person; returns how many."""
        ...

    def add(self, entry: InboxEntry) -> InboxEntry: ...

    def list(
        self, tenant: str, user_id: str, *, unread_only: bool = False, limit: int = 50
    ) -> list[InboxEntry]:
        """Newest first."""
        ...

    def mark_read(
        self, tenant: str, user_id: str, entry_ids: Sequence[str], now: datetime
    ) -> int: ...


class JourneyStateStore(Protocol):
    """Journey runs: at most one active run per (tenant, journey, user)."""

    def delete_user(self, tenant: str, user_id: str) -> int:
        """Erasure: remove every record of the person; returns how many."""
        ...

    def save(self, run: JourneyRun) -> None: ...

    def save_many(self, runs: Sequence[JourneyRun]) -> None:
        """:meth:`save` for many runs, in one transaction."""
        ...

    def active(self, tenant: str, user_id: str) -> list[JourneyRun]:
        """The person's active runs, oldest entry first."""
        ...

    def active_many(self, tenant: str, user_ids: Sequence[str]) -> dict[str, list[JourneyRun]]:
        """:meth:`active` for many people (those without an active run are left out)."""
        ...

    def latest(self, tenant: str, journey: str, user_id: str) -> JourneyRun | None: ...

    def latest_many(
        self, tenant: str, journeys: Sequence[str], user_ids: Sequence[str]
    ) -> dict[tuple[str, str], JourneyRun]:
        """:meth:`latest` for every (journey, user) pair, keyed so; pairs without a run are
        left out."""
        ...

    def due(self, tenant: str, now: datetime, *, limit: int = 1000) -> list[JourneyRun]:
        """Active runs whose ``wake_at`` is at or before ``now``."""
        ...
