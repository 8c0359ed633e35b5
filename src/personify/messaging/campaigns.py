"""Scheduled campaigns: a newsletter to an audience, each recipient with their own content.

Recommendations are rendered by the outbox worker at send time, so every recipient gets their
current personal block; enqueueing is idempotent per (campaign, person).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from personify.domain.errors import InvalidInput
from personify.domain.users import User
from personify.experiments.definitions import Experiment
from personify.messaging.conditions import Condition, Duration, all_hold, record_of
from personify.messaging.journeys import SendTime
from personify.messaging.message_tests import (
    REST_PHASE,
    TEST_PHASE,
    ArmPlan,
    MessageMetric,
    MessageVariant,
    WinnerRule,
    experiment_of,
    variant_for,
)
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
    variants: list[MessageVariant] | None = Field(
        default=None, max_length=26,
        description="an A/B/n test: 2..26 variants (subject, template, tone, send time)",
    )
    primary_metric: MessageMetric = Field(
        default="clicks", description="what the test is decided on (per recipient)"
    )
    test_duration: Duration = Field(
        default=timedelta(hours=24),
        description="the analysis is final this long after the last variant's send time",
    )
    winner: WinnerRule | None = Field(
        default=None, description="test on a share, then send the winner to the rest"
    )

    def arms(self) -> list[ArmPlan]:
        """Each variant's template, overrides and send time (the campaign's where unset)."""
        return [
            ArmPlan(v.name, v.template or self.template, v.subject, v.tone,
                    _utc(v.send_at) if v.send_at is not None else self.send_at)
            for v in self.variants or []
        ]

    def test_end(self) -> datetime:
        """When the test's analysis is final (and the winner is chosen, with a rule)."""
        last = max([a.send_at for a in self.arms()] or [self.send_at])
        return last + (self.winner.after if self.winner is not None else self.test_duration)

    def experiment(self) -> Experiment:
        """The experiment its people are assigned through (see ``message_tests``)."""
        if not self.variants:
            raise InvalidInput(f"campaign {self.name!r} has no variants", field="variants")
        return experiment_of(self.name, self.variants, self.primary_metric, self.winner,
                             start=self.send_at, end=self.test_end())


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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
    rest_variant: str | None = None,
) -> Iterable[OutboxMessage]:
    """One outbox message per matching person (not yet enqueued).

    A test campaign (``variants``) gives each person the variant the experiments engine
    assigns; people held back for the winner get nothing, unless ``rest_variant`` is given
    (the winner's phase): then only they get that variant. The dedup key is the same in both
    phases, so nobody gets the campaign twice."""
    arms = {a.name: a for a in campaign.arms()}
    experiment = campaign.experiment() if arms else None
    for user in users:
        if not all_hold(campaign.audience, record_of(user)):
            continue
        template, at = campaign.template, campaign.send_at
        context: dict[str, object] = {"campaign": campaign.name}
        if experiment is not None:
            variant = variant_for(experiment, user.user_id)
            if (variant is None) != (rest_variant is not None):
                continue  # held back during the test, or tested when sending to the rest
            arm = arms[variant or str(rest_variant)]
            template, at = arm.template, (arm.send_at if variant is not None else now)
            context |= {"variant": arm.name, "phase": TEST_PHASE if variant else REST_PHASE}
            context |= {k: v for k, v in (("subject", arm.subject), ("tone", arm.tone)) if v}
        if campaign.best_time and send_time is not None:
            at = send_time(user, max(at, now), campaign.within)
        yield new_message(
            tenant,
            user.user_id,
            template,
            channel=campaign.channel,
            dedup_key=f"campaign:{campaign.name}:{user.user_id}",
            context=context,
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
    rest_variant: str | None = None,
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

    for message in campaign_messages(
        tenant, campaign, users, send_time=send_time, now=now, rest_variant=rest_variant
    ):
        batch.append(message)
        if len(batch) >= batch_size:
            flush()
    flush()
    return created
