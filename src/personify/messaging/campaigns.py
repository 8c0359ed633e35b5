"""Scheduled campaigns: a newsletter to an audience, each recipient with their own content.

Recommendations are rendered by the outbox worker at send time, so every recipient gets their
current personal block; enqueueing is idempotent per (campaign, person).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from personify.domain.users import User
from personify.messaging.conditions import Condition, Duration, all_hold, record_of
from personify.messaging.journeys import SendTime
from personify.messaging.outbox import new_message
from personify.messaging.ports import OutboxStore
from personify.messaging.records import OutboxMessage


class Campaign(BaseModel):
    """A one-off send to everyone matching ``audience`` (all conditions must hold)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    template: str
    channel: str = "email"
    audience: list[Condition] = Field(default_factory=list)
    segment: str | None = Field(
        default=None, max_length=64,
        description="only people in this live segment (evaluated when the campaign is scheduled)",
    )
    send_at: datetime
    best_time: bool = False
    within: Duration = timedelta(hours=24)


def audience_without(document: dict[str, Any], ids: Collection[str]) -> dict[str, Any] | None:
    """The stored campaign ``document`` with ``ids`` (erased people's user / anonymous ids) taken
    out of its audience conditions' values, or None when none was there. A condition left with
    no value matches nobody, which was its intent for these people."""
    changed = False
    audience = []
    for condition in document.get("audience") or []:
        if isinstance(condition, dict):
            value = condition.get("value")
            if isinstance(value, str) and value in ids:
                condition, changed = {**condition, "value": None}, True
            elif isinstance(value, list) and any(isinstance(v, str) and v in ids for v in value):
                kept = [v for v in value if not (isinstance(v, str) and v in ids)]
                condition, changed = {**condition, "value": kept}, True
        audience.append(condition)
    return {**document, "audience": audience} if changed else None


def campaign_messages(
    tenant: str,
    campaign: Campaign,
    users: Iterable[User],
    *,
    send_time: SendTime | None = None,
    now: datetime,
) -> Iterable[OutboxMessage]:
    """One outbox message per matching person (not yet enqueued)."""
    for user in users:
        if not all_hold(campaign.audience, record_of(user)):
            continue
        at = campaign.send_at
        if campaign.best_time and send_time is not None:
            at = send_time(user, max(campaign.send_at, now), campaign.within)
        yield new_message(
            tenant,
            user.user_id,
            campaign.template,
            channel=campaign.channel,
            dedup_key=f"campaign:{campaign.name}:{user.user_id}",
            context={"campaign": campaign.name},
            not_before=at,
            now=now,
        )


def schedule_campaign(
    store: OutboxStore,
    tenant: str,
    campaign: Campaign,
    users: Iterable[User],
    *,
    send_time: SendTime | None = None,
    now: datetime,
    batch_size: int = 1_000,
) -> int:
    """Enqueue the campaign; returns how many messages were newly created."""
    created = 0
    batch: list[OutboxMessage] = []
    enqueue_many = getattr(store, "enqueue_many", None)

    def flush() -> None:
        nonlocal created
        if enqueue_many is not None:
            created += sum(enqueue_many(batch)[1])
        else:
            created += sum(store.enqueue(m)[1] for m in batch)
        batch.clear()

    for message in campaign_messages(tenant, campaign, users, send_time=send_time, now=now):
        batch.append(message)
        if len(batch) >= batch_size:
            flush()
    flush()
    return created
