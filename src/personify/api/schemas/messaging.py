"""Request and response shapes of ``/v1/messaging``: templates, journeys, campaigns, the outbox
and the in-app inbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from personify.domain._fields import Identifier
from personify.messaging.records import InboxEntry, JourneyRun, OutboxMessage


class TemplateSummary(BaseModel):
    name: str
    channel: str
    recommendations: int
    variants: list[str] = Field(description="language/tone of each variant, e.g. en/formal")
    updated_at: datetime


class TemplateList(BaseModel):
    templates: list[TemplateSummary]


class PreviewRequest(BaseModel):
    """Whom to render the template for, and the optional journey-like inputs."""

    model_config = ConfigDict(extra="forbid")

    user_id: Identifier
    cart_item_ids: list[Identifier] = Field(default_factory=list, max_length=50)
    discount_percent: float | None = Field(default=None, gt=0, le=100)
    event: dict[str, Any] = Field(default_factory=dict, description="trigger event properties")


class PreviewOut(BaseModel):
    subject: str
    preheader: str
    html: str
    text: str
    language: str
    tone: str
    recommendations: list[str] = Field(description="the recommended item ids in the block")


class JourneyOut(BaseModel):
    name: str
    enabled: bool
    description: str = ""
    trigger: dict[str, Any]
    document: dict[str, Any] = Field(description="the definition as stored")
    missing_templates: list[str] = Field(
        default_factory=list, description="templates its send steps name that do not exist yet"
    )
    updated_at: datetime | None = None


class JourneyList(BaseModel):
    journeys: list[JourneyOut]
    builtin: list[str] = Field(description="example journeys that can be enabled by name")


class RunOut(BaseModel):
    run_id: str
    journey: str
    user_id: str
    status: str
    step_index: int
    entered_at: datetime
    wake_at: datetime | None
    exit_reason: str | None
    events: list[str] = Field(description="event types seen since the person entered")
    messages: list[str] = Field(description="outbox message ids the run enqueued")

    @classmethod
    def of(cls, run: JourneyRun) -> RunOut:
        return cls(
            run_id=run.run_id, journey=run.journey, user_id=run.user_id, status=str(run.status),
            step_index=run.step_index, entered_at=run.entered_at, wake_at=run.wake_at,
            exit_reason=run.exit_reason,
            events=[str(e["type"]) for e in run.context.get("events", [])],
            messages=[str(m) for m in run.context.get("sent", [])],
        )


class CampaignOut(BaseModel):
    name: str
    template: str
    enqueued: int = Field(description="messages newly enqueued (0 when re-sent: idempotent)")
    variants: list[str] = Field(default_factory=list, description="a test's variants")
    decide_at: str | None = Field(
        default=None, description="when a test with a winner rule sends the winner to the rest"
    )


class VariantResultOut(BaseModel):
    """One variant's test-phase totals and per-recipient rates."""

    name: str
    sent: int
    opens: int
    clicks: int
    conversions: int
    revenue: float
    unsubscribes: int
    open_rate: float | None
    click_rate: float | None
    conversion_rate: float | None
    revenue_per_recipient: float | None
    unsubscribe_rate: float | None


class ComparisonOut(BaseModel):
    """A variant against the control on one metric (the experiments engine's statistics)."""

    metric: str
    variant: str
    control: str
    method: str
    control_value: float | None
    variant_value: float | None
    lift: float | None
    lift_ci: list[float | None]
    p_value: float | None
    p_adjusted: float | None
    significant: bool


class TestResultsOut(BaseModel):
    """A message test's analysis: totals, comparisons, verdict, and the winner decision."""

    campaign: str
    control: str
    primary_metric: str
    final: bool
    alpha: float
    verdict: str
    sample_ratio_ok: bool
    variants: list[VariantResultOut]
    comparisons: list[ComparisonOut]
    decision: dict[str, Any] | None = Field(
        default=None, description="status (testing / decided), winner, reason, sent_to_rest"
    )


class JourneyStepResultsOut(TestResultsOut):
    """A journey step's A/B/n test: the same analysis, over the step's recent sends."""

    journey: str
    step: str
    test: str = Field(description="the test's name: the campaign property of its sends")

class CampaignList(BaseModel):
    campaigns: list[dict[str, Any]]


class ChannelIn(BaseModel):
    """A tenant's webhook channel (the name comes from the URL)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="optional; must match the URL")
    url: str = Field(description="https://... (private and link-local addresses are refused)")
    secret: str | None = Field(
        default=None,
        description="HMAC-SHA256 signing key, >= 16 characters; never returned. Leave it out "
        "to keep the stored secret when changing another field",
    )
    timeout_s: float = Field(default=5.0, description="seconds, > 0 and <= 30")
    consent_purpose: str | None = Field(
        default="push_marketing", description="consent a marketing message on it needs"
    )


class ChannelOut(BaseModel):
    """A webhook channel as shown: never its secret."""

    name: str
    url: str
    timeout_s: float
    consent_purpose: str | None
    secret_set: bool = Field(description="always true: the secret is stored, never shown")
    source: str = Field(description="settings (every tenant, read-only) or api (this tenant)")
    updated_at: datetime | None = None


class ChannelList(BaseModel):
    channels: list[ChannelOut]


class OutboxCounts(BaseModel):
    counts: dict[str, int] = Field(description="messages per delivery status")


class MessageStatusOut(BaseModel):
    message_id: str
    user_id: str
    channel: str
    template: str
    status: str
    attempts: int
    in_doubt: bool
    last_error: str | None
    not_before: datetime | None
    sent_at: datetime | None

    @classmethod
    def of(cls, message: OutboxMessage) -> MessageStatusOut:
        return cls(
            message_id=message.message_id, user_id=message.user_id, channel=message.channel,
            template=message.template, status=str(message.status), attempts=message.attempts,
            in_doubt=message.in_doubt, last_error=message.last_error,
            not_before=message.not_before, sent_at=message.sent_at,
        )


class InboxEntryOut(BaseModel):
    entry_id: str
    subject: str
    text: str
    html: str
    created_at: datetime | None
    read_at: datetime | None

    @classmethod
    def of(cls, entry: InboxEntry) -> InboxEntryOut:
        return cls(
            entry_id=entry.entry_id, subject=entry.subject, text=entry.text, html=entry.html,
            created_at=entry.created_at, read_at=entry.read_at,
        )


class InboxList(BaseModel):
    user_id: str
    entries: list[InboxEntryOut]


class MarkRead(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entry_ids: list[str] = Field(min_length=1, max_length=200)


class MarkReadOut(BaseModel):
    changed: int
