"""The durable outbox: idempotent enqueueing and the worker that sends at the right moment.

The worker leases a batch, and for each message checks — at send time, not at queueing —
the person's record, unsubscribes, consent, quiet hours and frequency caps; renders the
template with fresh recommendations; commits "send started"; calls the channel; commits the
outcome. Failures are retried with exponential backoff and jitter. A message whose send had
started when a worker died is resent with the same Message-ID, flagged ``in_doubt``.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from personify.domain.errors import InvalidInput, PersonifyError
from personify.domain.events import Context, Event, EventType
from personify.domain.items import Item
from personify.domain.users import User
from personify.messaging.channels import Sender, SendError, check_channels
from personify.messaging.guardrails import Guardrails, local_day_bounds
from personify.messaging.inbox import InboxSender
from personify.messaging.ports import OutboxStore, SuppressionStore
from personify.messaging.records import DeliveryStatus, OutboxMessage, TrackedLink
from personify.messaging.smtp import SmtpSender
from personify.messaging.templates import (
    MessageInputs,
    MessageTemplate,
    TemplateRenderer,
    uses_insights,
)
from personify.messaging.tracking import EventSink, TrackingSigner

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
UserLookup = Callable[[str, str], User | None]
"""(tenant, user_id) -> the person, or None when unknown / erased."""
ConsentCheck = Callable[[str, str, str], bool]
"""(tenant, user_id, purpose) -> True when the person currently consents to the purpose."""
Recommend = Callable[[str, str, int], list[Item]]
"""(tenant, user_id, n) -> the person's current recommendations."""
ItemLookup = Callable[[str, Sequence[str]], Mapping[str, Item]]
TemplateLookup = Callable[[str, str], MessageTemplate | None]

BUILTIN_SENDERS: Mapping[str, type[Any]] = {"email": SmtpSender, "inbox": InboxSender}
"""The built-in channels by name: each sender class declares its consent purpose."""

def utc_now() -> datetime:
    return datetime.now(UTC)


def outbox_message_id(tenant: str, dedup_key: str) -> str:
    """A stable id from (tenant, dedup key): the same logical message always has the same id."""
    return hashlib.sha256(f"{tenant}\x00{dedup_key}".encode()).hexdigest()[:32]


def new_message(
    tenant: str,
    user_id: str,
    template: str,
    *,
    dedup_key: str,
    channel: str = "email",
    context: dict[str, Any] | None = None,
    transactional: bool = False,
    purpose: str | None = None,
    not_before: datetime | None = None,
    now: datetime | None = None,
) -> OutboxMessage:
    """An outbox record ready to enqueue (``context`` must be JSON-serializable)."""
    if not dedup_key or len(dedup_key) > 512:
        raise InvalidInput("dedup_key must have 1..512 characters", field="dedup_key")
    message_id = outbox_message_id(tenant, dedup_key)
    body = dict(context or {})
    body.setdefault("recommendation_id", f"msg-{message_id}")
    now = now or utc_now()
    return OutboxMessage(
        message_id=message_id,
        tenant=tenant,
        user_id=user_id,
        channel=channel,
        template=template,
        dedup_key=dedup_key,
        context=body,
        transactional=transactional,
        purpose=purpose,
        not_before=not_before or now,
        created_at=now,
    )


def enqueue(store: OutboxStore, message: OutboxMessage) -> tuple[OutboxMessage, bool]:
    """Enqueue idempotently; returns (stored message, created now?)."""
    return store.enqueue(message)


class ChannelLookup(Protocol):
    """Channels configured at run time (webhook channels per tenant), beside ``senders``."""

    def sender(self, tenant: str, name: str) -> Sender | None: ...

    def purpose(self, tenant: str, name: str) -> tuple[bool, str | None]:
        """(is one of these channels, the consent purpose its marketing messages need)."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: ``base * factor**(attempt-1)`` capped, +-``jitter``."""

    max_attempts: int = 6
    base: timedelta = timedelta(seconds=30)
    factor: float = 2.0
    max_delay: timedelta = timedelta(hours=6)
    jitter: float = 0.25

    def delay(self, attempt: int, rng: random.Random) -> timedelta:
        seconds = min(
            self.base.total_seconds() * self.factor ** max(attempt - 1, 0),
            self.max_delay.total_seconds(),
        )
        spread = seconds * self.jitter
        return timedelta(seconds=max(0.0, seconds + rng.uniform(-spread, spread)))


@dataclass
class _CapCount:
    """Capped messages one person got in their current local day ``[start, end)``."""

    start: datetime
    end: datetime
    count: int


@dataclass
class WorkerStats:
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    deferred: int = 0
    retried: int = 0
    in_doubt_resends: int = 0
    fenced: int = 0
    unknown_purpose: int = 0
    """Marketing messages not sent because their consent purpose is unknown."""


@dataclass
class OutboxWorker:
    """Claims due messages and delivers them (see the module docstring)."""

    store: OutboxStore
    templates: TemplateLookup
    users: UserLookup
    senders: Mapping[str, Sender]
    consent: ConsentCheck
    suppressions: SuppressionStore
    recommend: Recommend | None = None
    items: ItemLookup | None = None
    insights: Callable[[str, str], dict[str, Any]] | None = None
    """``(tenant, user_id)``: the person's ``person.insights`` template variables, asked only for
    templates that read ``person``."""
    hold_back: Callable[[str, str], str | None] | None = None
    """``(tenant, user_id)``: why marketing to the person is held back now (e.g. after their
    complaint), None when it is not; a held-back message is suppressed with that reason."""
    renderer: TemplateRenderer = field(default_factory=TemplateRenderer)
    signer: TrackingSigner | None = None
    guardrails: Guardrails = field(default_factory=Guardrails)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Clock = utc_now
    worker_id: str = "worker"
    lease: timedelta = timedelta(seconds=60)
    batch_size: int = 100
    rng: random.Random = field(default_factory=random.Random)
    stats: WorkerStats = field(default_factory=WorkerStats)
    concurrency: int = 1
    """Threads sending one claimed batch; each needs its own senders from ``make_senders``."""
    make_senders: Callable[[], Mapping[str, Sender]] | None = None
    channels: ChannelLookup | None = None
    """Channels beyond ``senders`` (webhook channels from the settings and the API)."""
    emit: EventSink | None = None
    """Receives a ``message_sent`` event per delivered message (channel in its context; the
    recommendation id when the message carried recommendations): the KPIs count e-mails sent
    and the personalized share from these."""
    purposes: Collection[str] | None = None
    """The consent purposes that exist; a marketing message needing another one is not sent
    (None: any purpose the consent check answers for)."""
    observe: Callable[[str, str], None] | None = None
    """Told ``(channel, result)`` of every delivery decision (sent, failed, suppressed,
    deferred, retried): the metrics."""

    def __post_init__(self) -> None:
        check_channels(self.senders)  # consent fails closed: every channel names its purpose
        self._sent_today: dict[tuple[str, str, str], _CapCount] = {}
        self._batch_users: dict[tuple[str, str], User | None] = {}
        self._local = threading.local()
        self._stats_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._thread_senders: list[Mapping[str, Sender]] = []
        if self.concurrency > 1:
            if self.make_senders is None:
                raise InvalidInput(
                    "concurrency > 1 needs make_senders (one SMTP connection per thread)",
                    field="make_senders",
                )
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=self.worker_id)

    def _senders(self) -> Mapping[str, Sender]:
        if self._pool is None:
            return self.senders
        senders: Mapping[str, Sender] | None = getattr(self._local, "senders", None)
        if senders is None:
            assert self.make_senders is not None
            senders = self._local.senders = self.make_senders()
            check_channels(senders)
            with self._stats_lock:
                self._thread_senders.append(senders)
        return senders

    def run_once(self) -> int:
        """Claim one batch and process it; returns how many messages were handled."""
        now = self.clock()
        batch = self.store.claim(self.worker_id, now, limit=self.batch_size, lease=self.lease)
        if not batch:
            return 0
        self._batch_users = {}
        self._sent_today = self._prefetch_caps(batch, now)
        try:
            if self._pool is None:
                for message in batch:
                    self.process(message)
            else:  # one task per thread (a slice of the batch), not one per message
                slices = [batch[k :: self.concurrency] for k in range(self.concurrency)]
                list(self._pool.map(self._process_all, slices))
        finally:
            self._sent_today, self._batch_users = {}, {}
        return len(batch)

    def _process_all(self, messages: Sequence[OutboxMessage]) -> None:
        for message in messages:
            self.process(message)

    def _user(self, tenant: str, user_id: str) -> User | None:
        """The person: looked up once per claimed batch (see :meth:`_prefetch_caps`)."""
        key = (tenant, user_id)
        if key in self._batch_users:
            return self._batch_users[key]
        return self.users(tenant, user_id)

    def _prefetch_caps(
        self, batch: Sequence[OutboxMessage], now: datetime
    ) -> dict[tuple[str, str, str], _CapCount]:
        """Look up the batch's people once, and how many capped messages each got today (their
        local day) in one query per (tenant, channel) instead of one per message. Sends made
        while the batch runs are added as they happen (see :meth:`_sent`)."""
        caps = self.guardrails.caps.per_day
        wanted: dict[tuple[str, str], dict[str, tuple[datetime, datetime]]] = {}
        for message in batch:
            key = (message.tenant, message.user_id)
            if key not in self._batch_users:
                self._batch_users[key] = self.users(*key)
            user = self._batch_users[key]
            if user is None or message.transactional or message.channel not in caps:
                continue
            windows = wanted.setdefault((message.tenant, message.channel), {})
            windows[message.user_id] = local_day_bounds(user, now)
        found: dict[tuple[str, str, str], _CapCount] = {}
        for (tenant, channel), windows in wanted.items():
            counts = self.store.count_sent_many(tenant, channel, windows)
            for user_id, (start, end) in windows.items():
                found[(tenant, channel, user_id)] = _CapCount(start, end, counts.get(user_id, 0))
        return found

    def _sent_today_for(self, message: OutboxMessage, user: User, now: datetime) -> int | None:
        """The prefetched count of today's capped sends, or None (then the store is asked)."""
        cached = self._sent_today.get((message.tenant, message.channel, message.user_id))
        if cached is None or not cached.start <= now < cached.end:
            return None
        with self._stats_lock:
            return cached.count

    def _sent(self, message: OutboxMessage) -> None:
        cached = self._sent_today.get((message.tenant, message.channel, message.user_id))
        if cached is not None and not message.transactional:
            with self._stats_lock:
                cached.count += 1

    def run_until_idle(self, *, max_batches: int = 1_000_000) -> int:
        """Process batches until nothing is due; returns the number of messages handled."""
        total = 0
        for _ in range(max_batches):
            handled = self.run_once()
            if handled == 0:
                break
            total += handled
        return total

    def run_forever(self, stop: Callable[[], bool], *, idle_sleep: float = 0.2) -> None:
        while not stop():
            if self.run_once() == 0:
                time.sleep(idle_sleep)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        for senders in [self.senders, *self._thread_senders]:
            for sender in senders.values():
                sender.close()

    def _count(self, name: str, message: OutboxMessage | None = None) -> None:
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)
        if message is not None and self.observe is not None:
            try:
                self.observe(message.channel, name)
            except Exception:  # metrics never change a delivery
                log.exception("outbox observer failed")

    def process(self, message: OutboxMessage) -> DeliveryStatus:
        """Decide and perform the fate of one claimed message; returns its new status."""
        now = self.clock()
        user = self._user(message.tenant, message.user_id)
        if user is None or user.restricted:
            return self._finish(message, DeliveryStatus.SUPPRESSED, "unknown or restricted user")
        if not message.transactional:
            reason = self._suppression_reason(message)
            if reason:
                return self._finish(message, DeliveryStatus.SUPPRESSED, reason)
            until = self.guardrails.defer_until(
                self.store,
                message.tenant,
                user,
                message.channel,
                now,
                sent_today=self._sent_today_for(message, user, now),
            )
            if until is not None:
                self._count("deferred", message)
                self._mark(message, DeliveryStatus.DEFERRED, not_before=until, error="guardrail")
                return DeliveryStatus.DEFERRED
        sender = self._senders().get(message.channel)
        if sender is None and self.channels is not None:
            sender = self.channels.sender(message.tenant, message.channel)
        template = self.templates(message.tenant, message.template)
        if sender is None or template is None:
            missing = "channel" if sender is None else "template"
            return self._finish(
                message, DeliveryStatus.FAILED, f"unknown {missing} for {message.template!r}"
            )
        try:
            inputs = self._inputs(message, user, template)
            rendered = self.renderer.render(template, inputs, self._link_maker(message))
        except PersonifyError as exc:
            return self._finish(message, DeliveryStatus.FAILED, f"render: {exc.message}")
        self.guardrails.throttle(message.channel)
        if not self.store.begin_send(
            message.message_id, message.claim_token or "", rendered.links or None
        ):
            self._count("fenced")
            return DeliveryStatus.SENDING
        if message.in_doubt:
            self._count("in_doubt_resends")
        attempts = message.attempts + 1
        try:
            sender.send(message, rendered, user)
        except SendError as exc:
            if exc.permanent or attempts >= self.retry.max_attempts:
                return self._finish(message, DeliveryStatus.FAILED, str(exc), attempts=attempts)
            self._count("retried", message)
            retry_at = self.clock() + self.retry.delay(attempts, self.rng)
            self._mark(
                message,
                DeliveryStatus.DEFERRED,
                not_before=retry_at,
                error=str(exc),
                attempts=attempts,
            )
            return DeliveryStatus.DEFERRED
        self._sent(message)
        status = self._finish(message, DeliveryStatus.SENT, None, attempts=attempts)
        self._emit_sent(message, inputs)
        return status

    def _emit_sent(self, message: OutboxMessage, inputs: MessageInputs) -> None:
        if self.emit is None:
            return
        personalized = bool(inputs.recommendations)
        event = Event(
            event_id=f"message_sent:{message.message_id}",
            type=EventType.MESSAGE_SENT,
            user_id=message.user_id,
            timestamp=self.clock(),
            context=Context(channel=message.channel),
            recommendation_id=inputs.recommendation_id if personalized else None,
            item_ids=[i.item_id for i in inputs.recommendations] or None,
            properties={
                "message_id": message.message_id, "template": message.template,
                **{k: str(message.context[k]) for k in ("campaign", "variant", "phase")
                   if message.context.get(k) is not None},
            },
        )
        try:
            self.emit(message.tenant, event)
        except Exception:  # the message is sent; a lost KPI event must not fail the send
            log.exception("message_sent event of %s not recorded", message.message_id)

    def _suppression_reason(self, message: OutboxMessage) -> str | None:
        """Why a marketing message must not be sent (None: it may). Consent fails closed: a
        message whose consent purpose is unknown is not sent."""
        if self.suppressions.is_suppressed(message.tenant, message.user_id, message.channel):
            return "unsubscribed"
        known, channel_purpose = self._channel_purpose(message.tenant, message.channel)
        purpose = message.purpose or channel_purpose
        if purpose is None:
            if not known:
                return None  # no such channel: the message fails as such below
            self._count("unknown_purpose")
            return f"skipped: channel {message.channel!r} declares no consent purpose"
        if self.purposes is not None and purpose not in self.purposes:
            self._count("unknown_purpose")
            return f"skipped: unknown consent purpose {purpose!r}"
        if not self.consent(message.tenant, message.user_id, purpose):
            return f"no consent for {purpose}"
        if self.hold_back is not None:
            return self.hold_back(message.tenant, message.user_id)
        return None

    def _channel_purpose(self, tenant: str, channel: str) -> tuple[bool, str | None]:
        """(the channel exists, the consent purpose it declares)."""
        sender = self._senders().get(channel)
        if sender is not None:
            return True, sender.consent_purpose
        if self.channels is not None:
            known, purpose = self.channels.purpose(tenant, channel)
            if known:
                return known, purpose
        # a built-in channel this worker was not given (no SMTP configured, say) still has the
        # purpose its sender class declares: consent is checked first, and a consented message
        # then fails for want of the channel
        builtin = BUILTIN_SENDERS.get(channel)
        return False, builtin.consent_purpose if builtin is not None else None

    def _inputs(
        self, message: OutboxMessage, user: User, template: MessageTemplate
    ) -> MessageInputs:
        context = message.context
        recommendations: list[Item] = []
        if self.recommend is not None and template.recommendations > 0:
            exclude = set(context.get("exclude_items", []))
            recommendations = [
                item
                for item in self.recommend(
                    message.tenant, message.user_id, template.recommendations + len(exclude)
                )
                if item.item_id not in exclude
            ][: template.recommendations]
        cart: list[Item] = []
        cart_ids = [str(i) for i in context.get("cart_item_ids", [])]
        if cart_ids and self.items is not None:
            found = self.items(message.tenant, cart_ids)
            cart = [found[i] for i in cart_ids if i in found]
        signer = self.signer
        insights = (
            self.insights(message.tenant, message.user_id)
            if self.insights is not None and uses_insights(template, context.get("subject"))
            else None
        )
        return MessageInputs(
            user=user,
            insights=insights,
            message_id=message.message_id,
            recommendation_id=context.get("recommendation_id"),
            recommendations=recommendations,
            cart=cart,
            discount=context.get("discount"),
            event=dict(context.get("event", {})),
            extra={"journey": context.get("journey"), "campaign": context.get("campaign"),
                   "variant": context.get("variant")},
            subject=context.get("subject"),
            tone=context.get("tone"),
            unsubscribe_url=(
                signer.unsubscribe_url(message.tenant, message.user_id, message.channel)
                if signer
                else ""
            ),
            open_pixel_url=(
                signer.open_url(message.tenant, message.message_id, message.user_id)
                if signer
                else ""
            ),
        )

    def _link_maker(self, message: OutboxMessage) -> Callable[[str, TrackedLink], str] | None:
        signer = self.signer
        if signer is None:
            return None
        return lambda link_id, _link: signer.click_url(
            message.tenant, message.message_id, message.user_id, link_id
        )

    def _finish(
        self,
        message: OutboxMessage,
        status: DeliveryStatus,
        error: str | None,
        *,
        attempts: int | None = None,
    ) -> DeliveryStatus:
        counter = {
            DeliveryStatus.SENT: "sent",
            DeliveryStatus.FAILED: "failed",
            DeliveryStatus.SUPPRESSED: "suppressed",
        }[status]
        self._count(counter, message)
        self._mark(message, status, error=error, attempts=attempts)
        return status

    def _mark(
        self,
        message: OutboxMessage,
        status: DeliveryStatus,
        *,
        not_before: datetime | None = None,
        error: str | None = None,
        attempts: int | None = None,
    ) -> None:
        ok = self.store.mark(
            message.message_id,
            message.claim_token or "",
            status,
            self.clock(),
            not_before=not_before,
            error=error,
            attempts=attempts,
        )
        if not ok:
            self._count("fenced")
            log.warning(
                "outbox message %s: lease lost before marking %s", message.message_id, status
            )
