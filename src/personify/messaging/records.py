"""Records the messaging stores keep: outbox messages, links, inbox entries, journey runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class DeliveryStatus(StrEnum):
    """Where one outbox message is in its life; ``sent``, ``failed``, ``suppressed`` are final."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    DEFERRED = "deferred"


FINAL_STATUSES = frozenset({DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SUPPRESSED})


@dataclass
class OutboxMessage:
    """One message to one person through one channel, rendered only when it is sent.

    ``dedup_key`` makes enqueueing idempotent; ``claim_token`` fences a worker's lease so a
    worker whose lease expired can no longer mark the message. ``send_started`` is committed
    just before the channel is called: a message reclaimed with it set is ``in_doubt`` (it may
    have been delivered before a crash) and is resent with the same Message-ID.
    """

    message_id: str
    tenant: str
    user_id: str
    channel: str
    template: str
    dedup_key: str
    context: dict[str, Any] = field(default_factory=dict)
    transactional: bool = False
    purpose: str | None = None
    status: DeliveryStatus = DeliveryStatus.QUEUED
    not_before: datetime | None = None
    attempts: int = 0
    lease_until: datetime | None = None
    claim_token: str | None = None
    send_started: bool = False
    in_doubt: bool = False
    last_error: str | None = None
    created_at: datetime | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class TrackedLink:
    """A link inside a sent message; clicks redirect only to this stored ``url``."""

    url: str
    item_id: str | None = None
    recommendation_id: str | None = None


@dataclass
class InboxEntry:
    """An in-app message the client pulls through the API."""

    entry_id: str
    tenant: str
    user_id: str
    subject: str
    text: str
    html: str = ""
    created_at: datetime | None = None
    read_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)


class RunStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    EXITED = "exited"


@dataclass
class JourneyRun:
    """One person's way through one journey."""

    run_id: str
    tenant: str
    journey: str
    user_id: str
    entered_at: datetime
    step_index: int = 0
    status: RunStatus = RunStatus.ACTIVE
    wake_at: datetime | None = None
    exit_reason: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None
