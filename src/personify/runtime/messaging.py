"""The messaging runtime of one process: the journey engines (one per tenant, built from its
enabled journeys), the outbox worker, tracking, previews and campaigns, all wired to the
service's stores, ingestion and recommendation chain.

``clock`` drives journeys and the outbox (tests swap it for a fake one); tracking events are
stamped with the ingestion clock, so they are never "in the future" for the event store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from personify.domain.errors import InvalidInput, NotFound, PersonifyError
from personify.domain.events import Event, EventType
from personify.domain.items import Item
from personify.domain.users import User
from personify.experiments.analysis import ExperimentResult
from personify.ingestion import EventIngestor
from personify.messaging.campaigns import Campaign, schedule_campaign
from personify.messaging.item_updates import (
    NEW_FOR_YOU,
    ItemChange,
    ItemChangeStore,
    ItemViewStore,
)
from personify.messaging.journey_definitions import MAX_VIEWED_WITHIN, JourneyDefinition, SendStep
from personify.messaging.journeys import JourneyEngine, SendTime
from personify.messaging.message_tests import (
    TestData,
    analyse_test,
    choose_winner,
    result_document,
    samples_from_sends,
    step_experiment,
)
from personify.messaging.outbox import ConsentCheck, OutboxWorker, Recommend
from personify.messaging.ports import InboxStore, JourneyStateStore, OutboxStore, SuppressionStore
from personify.messaging.templates import RenderedMessage, preview, uses_insights
from personify.messaging.timing import SendTimeModel
from personify.messaging.tracking import TrackingHandler, TrackingSigner
from personify.messaging.webhook_channels import ChannelDirectory
from personify.runtime.messaging_definitions import (
    CAMPAIGN,
    MESSAGE_TEST,
    MessagingDefinitions,
)
from personify.storage.registry import Stores

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
TIMING_DAYS = 30
"""Days of activity the send-time model learns from."""
TIMING_MAX_EVENTS = 200_000
_STORED_SUBJECTS: ContextVar[frozenset[str]] = ContextVar("stored_subjects", default=frozenset())
"""The people of the batch being handed to journeys: their events were just stored, so they are
known through events without asking the database again."""

HISTORY_LIMIT = 200
"""Newest events of a person that repeated-event triggers ("viewed 3 times") count in."""
ACTIVITY_LOOKBACK = 50
"""Latest events read to find the last one that was the person's own (not a message sent)."""
USER_PAGE = 1_000
MAX_ITEM_AUDIENCE = 10_000
"""At most this many recent viewers are messaged about one item change (per journey)."""
ITEM_CHANGE_MAX_AGE = timedelta(days=1)
"""Queued item changes older than this are dropped unhandled (a stale price drop)."""
DECIDE_EVERY = timedelta(seconds=30)
"""How often the loop looks for message tests whose winner is due."""
MAX_BACKFILL_VIEWS = 2_000_000
"""The one-time view backfill of a tenant stops after this many view events."""


@dataclass
class MessagingStores:
    """The operational state of messaging (outbox, unsubscribes, inbox, journey runs, the
    item-change queue and who viewed which item)."""

    outbox: OutboxStore
    suppressions: SuppressionStore
    inbox: InboxStore
    runs: JourneyStateStore
    item_changes: ItemChangeStore
    item_views: ItemViewStore
    path: str | None = None

    def sent_to(self, tenant: str, user_id: str) -> list[dict[str, Any]]:
        """The person's messages (outbox: channel, template, status, times) and in-app inbox
        entries, for a data-subject export."""
        out: list[dict[str, Any]] = [
            {
                "kind": "message",
                "message_id": m.message_id,
                "channel": m.channel,
                "template": m.template,
                "status": str(m.status),
                "created_at": _iso(m.created_at),
                "sent_at": _iso(m.sent_at),
                "purpose": m.purpose,
            }
            for m in self.outbox.for_user(tenant, user_id)
        ]
        out += [
            {
                "kind": "inbox",
                "entry_id": e.entry_id,
                "subject": e.subject,
                "text": e.text,
                "created_at": _iso(e.created_at),
                "read_at": _iso(e.read_at),
            }
            for e in self.inbox.list(tenant, user_id, limit=10_000)
        ]
        return out

    def forget(self, tenant: str, subjects: Sequence[str]) -> int:
        """Erasure hook: the subjects' messages, links, inbox, journey runs and unsubscribes."""
        removed = 0
        for subject in subjects:
            for store in (self.outbox, self.inbox, self.runs, self.suppressions, self.item_views):
                removed += store.delete_user(tenant, subject)
        return removed

    def close(self) -> None:
        stores = (
            self.outbox, self.suppressions, self.inbox, self.runs, self.item_changes,
            self.item_views,
        )
        for store in stores:
            close = getattr(store, "close", None)
            if close is not None:
                close()


class _Users(Mapping[str, User]):
    """Users looked up one by one on demand (what ``SendTimeModel.fit`` reads zones from)."""

    def __init__(self, stores: Stores, tenant: str) -> None:
        self._stores, self._tenant = stores, tenant
        self._seen: dict[str, User | None] = {}

    def __getitem__(self, user_id: str) -> User:
        if user_id not in self._seen:
            self._seen[user_id] = self._stores.users.get(self._tenant, user_id)
        user = self._seen[user_id]
        if user is None:
            raise KeyError(user_id)
        return user

    def __iter__(self) -> Iterator[str]:
        return iter([k for k, v in self._seen.items() if v is not None])

    def __len__(self) -> int:
        return sum(1 for v in self._seen.values() if v is not None)


@dataclass
class MessagingRuntime:
    """Everything messaging needs at run time (see the module docstring)."""

    stores: Stores
    state: MessagingStores
    definitions: MessagingDefinitions
    ingestor: EventIngestor
    signer: TrackingSigner
    worker: OutboxWorker
    consent: ConsentCheck
    recommend: Recommend
    clock: Clock = lambda: datetime.now(UTC)
    poll_s: float = 1.0
    channels: ChannelDirectory = field(default_factory=ChannelDirectory)
    """Webhook channels: the settings' (every tenant) and each tenant's own."""
    segment_members: Callable[[str, str], Callable[[str], bool]] | None = None
    """``(tenant, segment_id) -> is this user in it now`` (set by the insights wiring);
    campaigns with a ``segment`` need it."""
    new_item_audience: Callable[[str, str, int], tuple[list[str], dict[str, Any]]] | None = None
    """``(tenant, item_id, limit) -> (people, event context)``: who a new event / post /
    episode is for (set by the networking wiring: group members, series followers, people on
    its topics); the ``new_for_you`` journeys need it."""
    tracking: TrackingHandler = field(init=False)

    def __post_init__(self) -> None:
        self.tracking = TrackingHandler(
            self.signer,
            self.state.outbox,
            self.state.suppressions,
            self.emit,
            clock=lambda: self.ingestor.clock(),
        )
        self.worker.emit = self.emit  # sent messages become events: the KPIs count them
        self.worker.users = self.person  # people known only through events are reached too
        self._engines: dict[str, tuple[object, JourneyEngine]] = {}
        self._timing: dict[str, tuple[datetime, SendTimeModel]] = {}
        self._last_scan: datetime | None = None
        self._last_decide: datetime | None = None
        self._backfilled: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._journey_lock = threading.RLock()
        """Serializes journey work in this process (request threads and the background
        thread) so two updates of one run never interleave."""

    # -- journeys -------------------------------------------------------------------------------

    def engine_for(self, tenant: str) -> JourneyEngine | None:
        """The tenant's journey engine, or None when it has no enabled journey."""
        journeys = self.definitions.enabled_journeys(tenant)
        if not journeys:
            return None
        cached = self._engines.get(tenant)
        if cached is not None and cached[0] is journeys:
            return cached[1]
        counted = sorted(
            {j.trigger.event for j in journeys if j.trigger.event and j.trigger.min_count > 1}
        )

        def history(t: str, user_id: str) -> list[Event]:
            # only repeated-event triggers ("viewed 3 times") read it: fetch just those types
            return self.stores.events.for_user(t, user_id, limit=HISTORY_LIMIT, types=counted)

        def history_many(t: str, user_ids: Sequence[str]) -> dict[str, list[Event]]:
            # the same reads for a whole batch's people at once (one query per chunk of ids)
            return self.stores.events.recent_for_users(
                t, user_ids, types=counted, limit_per_user=HISTORY_LIMIT
            )

        engine = JourneyEngine(
            journeys,
            self.state.runs,
            self.state.outbox,
            users=self.person,
            consent=self.consent,
            suppressions=self.state.suppressions,
            history=history,
            send_time=self.send_time_for(tenant),
            users_many=self.people,
            history_many=history_many,
            insights=self.worker.insights,
        )
        self._engines[tenant] = (journeys, engine)
        return engine

    def person(self, tenant: str, user_id: str) -> User | None:
        """The person's record; for someone known only through events (imported or sent
        without a user record) a bare :class:`User` with just the id, so journeys and the
        worker reach them too. None when neither exists (or the person was erased)."""
        user = self.stores.users.get(tenant, user_id)
        if user is not None:
            return user
        return User(user_id=user_id) if self._has_events(tenant, user_id) else None

    def people(self, tenant: str, user_ids: Sequence[str]) -> dict[str, User]:
        """:meth:`person` for many people (those with neither record nor events left out)."""
        get_many = getattr(self.stores.users, "get_many", None)
        found: dict[str, User] = (
            dict(get_many(tenant, list(user_ids))) if get_many is not None
            else {u: v for u in user_ids if (v := self.stores.users.get(tenant, u)) is not None}
        )
        just_stored = _STORED_SUBJECTS.get()
        found.update({u: User(user_id=u) for u in user_ids if u not in found and u in just_stored})
        missing = [u for u in dict.fromkeys(user_ids) if u not in found]
        if missing:  # known only through events: one bulk read (not one query per person)
            recent = self.stores.events.recent_for_users(tenant, missing, limit_per_user=1)
            found.update({u: User(user_id=u) for u in missing if recent.get(u)})
        return found

    def _has_events(self, tenant: str, user_id: str) -> bool:
        return bool(self.stores.events.for_user(tenant, user_id, limit=1))

    def on_events(self, tenant: str, events: Sequence[Event]) -> None:
        """Ingestion listener: hand the stored batch to the tenant's journeys at once
        (:meth:`JourneyEngine.handle_events`: one read of the batch's active runs, one write
        transaction; an event that triggers nothing is skipped for people without a run)."""
        engine = self.engine_for(tenant)
        if engine is None:
            return
        # the outbox's own ``message_sent`` records are not the person's activity: they neither
        # start, advance nor end a journey (nor appear in a run's events)
        events = [e for e in events if e.type != EventType.MESSAGE_SENT]
        if not events:
            return
        if any(j.trigger.item_update for j in engine.journeys):
            self._record_views(tenant, events)
        now = self.clock()
        token = _STORED_SUBJECTS.set(frozenset(e.user_id for e in events if e.user_id))
        try:
            with self._journey_lock:
                engine.handle_events(tenant, events, now)
        finally:
            _STORED_SUBJECTS.reset(token)

    def on_segment_changed(
        self, tenant: str, user_id: str, segment: str, entered: bool, at: datetime
    ) -> None:
        """Segment listener: an entry starts the tenant's journeys triggered by that segment
        (``trigger: {segment: ...}``, e.g. the built-in ``entered_segment_vip``)."""
        if not entered:
            return
        engine = self.engine_for(tenant)
        if engine is None:
            return
        with self._journey_lock:
            engine.on_segment_entered(tenant, user_id, segment, self.clock())

    # -- item updates: price drops and restocks ---------------------------------------------

    def item_journeys(self, tenant: str) -> list[JourneyDefinition]:
        """The tenant's enabled journeys triggered by item updates."""
        return [j for j in self.definitions.enabled_journeys(tenant) if j.trigger.item_update]

    def wants_item_changes(self, tenant: str) -> bool:
        """Whether item writes of the tenant must be compared (a price-drop or back-in-stock
        journey is enabled); asked by the catalogue watcher before every write."""
        return bool(self.item_journeys(tenant))

    def record_item_changes(self, tenant: str, changes: list[ItemChange]) -> None:
        """Catalogue watcher sink: queue the internal trigger events durably; the messaging
        loop hands them to the journeys (:meth:`process_item_changes`)."""
        self.state.item_changes.record(changes)
        log.info("queued %d item change(s) of tenant %s", len(changes), tenant)

    def _record_views(self, tenant: str, events: Sequence[Event]) -> None:
        views = [
            (e.item_id, e.user_id, e.timestamp)
            for e in events
            if e.type == EventType.VIEW and e.user_id is not None and e.item_id is not None
        ]
        if views:
            self.state.item_views.record_views(tenant, views)

    def backfill_views(self, tenant: str, now: datetime) -> int:
        """Once per tenant (the first time an item-update journey is enabled): index the
        stored view events of the longest ``viewed_within`` window. Returns views indexed."""
        journeys = self.item_journeys(tenant)
        if not journeys or tenant in self._backfilled:
            return 0
        if self.state.item_views.backfilled(tenant):  # by this or another process
            self._backfilled.add(tenant)
            return 0
        window = max(j.trigger.viewed_within for j in journeys)
        batch: list[tuple[str, str, datetime]] = []
        indexed = 0
        for event in self.stores.events.scan(
            tenant, since=now - window, types=[EventType.VIEW.value]
        ):
            if event.user_id is None or event.item_id is None:
                continue
            batch.append((event.item_id, event.user_id, event.timestamp))
            if len(batch) >= 5_000:
                self.state.item_views.record_views(tenant, batch)
                indexed, batch = indexed + len(batch), []
            if indexed >= MAX_BACKFILL_VIEWS:
                break
        self.state.item_views.record_views(tenant, batch)
        self.state.item_views.mark_backfilled(tenant, now)
        self._backfilled.add(tenant)
        return indexed + len(batch)

    def process_item_changes(self, now: datetime | None = None, *, limit: int = 200) -> int:
        """Hand queued item changes to the journeys: each matching journey starts for the
        people who viewed the item within its ``viewed_within`` (most recent first, at most
        :data:`MAX_ITEM_AUDIENCE`). Changes older than :data:`ITEM_CHANGE_MAX_AGE` are dropped
        unhandled. Returns the runs started."""
        now = now or self.clock()
        for tenant in self.definitions.journey_tenants():
            self.backfill_views(tenant, now)
        started = 0
        while True:
            claimed = self.state.item_changes.claim(now, limit=limit, lease=timedelta(minutes=5))
            if not claimed:
                return started
            for _change_id, change in claimed:
                engine = self.engine_for(change.tenant)
                if engine is None or change.at < now - ITEM_CHANGE_MAX_AGE:
                    continue

                audience: list[str] | None = None
                extra: dict[str, Any] = {}
                if change.kind == NEW_FOR_YOU:  # not viewers: the people the item is for
                    if self.new_item_audience is None or not any(
                            j.trigger.item_update == "new_for_you" for j in engine.journeys):
                        continue  # nobody listens: the audience is not computed
                    audience, extra = self.new_item_audience(
                        change.tenant, change.item_id, MAX_ITEM_AUDIENCE)

                def viewers(within: timedelta, change: ItemChange = change,
                            found: list[str] | None = audience) -> list[str]:
                    if found is not None:
                        return found
                    return self.state.item_views.viewers(
                        change.tenant, change.item_id, now - within, limit=MAX_ITEM_AUDIENCE
                    )

                with self._journey_lock:
                    started += len(engine.on_item_change(change, viewers, now, extra))
            self.state.item_changes.done([change_id for change_id, _ in claimed])

    def tick(self, now: datetime | None = None) -> int:
        """Advance every due journey run of every tenant; returns how many advanced."""
        now = now or self.clock()
        advanced = 0
        for tenant in self.definitions.journey_tenants():
            engine = self.engine_for(tenant)
            if engine is not None:
                with self._journey_lock:
                    advanced += engine.tick(tenant, now)
        return advanced

    def scan_users(self, now: datetime | None = None) -> int:
        """Daily: birthdays and inactivity (win-back) for tenants with such journeys."""
        now = now or self.clock()
        started = 0
        for tenant in self.definitions.journey_tenants():
            engine = self.engine_for(tenant)
            if engine is None or not any(
                j.trigger.birthday or j.trigger.inactive_for for j in engine.journeys
            ):
                continue

            def last_active(user_id: str, tenant: str = tenant) -> datetime | None:
                # the messages the outbox sent (``message_sent``) are not the person's activity
                latest = self.stores.events.for_user(tenant, user_id, limit=ACTIVITY_LOOKBACK)
                return next((e.timestamp for e in latest if e.type != EventType.MESSAGE_SENT),
                            None)

            with self._journey_lock:
                started += len(
                    engine.scan_users(tenant, self.users(tenant), now, last_active=last_active)
                )
        return started

    # -- timing ---------------------------------------------------------------------------------

    def send_time_for(self, tenant: str) -> SendTime:
        """``(user, now, within) -> when``: the tenant's send-time model, else right away."""

        def send_time(user: User, now: datetime, within: timedelta) -> datetime:
            fitted = self._timing.get(tenant)
            return fitted[1].next_send_time(user, now, within) if fitted else now

        return send_time

    def fit_send_time(self, tenant: str, now: datetime | None = None) -> SendTimeModel:
        """Learn the tenant's best hours from the last :data:`TIMING_DAYS` days of activity."""
        now = now or self.clock()
        activity: list[tuple[str, datetime]] = []
        for event in self.stores.events.scan(tenant, since=now - timedelta(days=TIMING_DAYS)):
            if event.user_id is not None:
                activity.append((event.user_id, event.timestamp))
            if len(activity) >= TIMING_MAX_EVENTS:
                break
        model = SendTimeModel().fit(activity, _Users(self.stores, tenant))
        self._timing[tenant] = (now, model)
        return model

    # -- content --------------------------------------------------------------------------------

    def users(self, tenant: str) -> Iterator[User]:
        """Every user of the tenant, page by page."""
        offset = 0
        while True:
            page = self.stores.users.list(tenant, limit=USER_PAGE, offset=offset)
            yield from page
            if len(page) < USER_PAGE:
                return
            offset += len(page)

    def preview(
        self,
        tenant: str,
        template_name: str,
        user_id: str,
        *,
        cart_item_ids: Sequence[str] = (),
        discount_percent: float | None = None,
        event: dict[str, Any] | None = None,
    ) -> tuple[RenderedMessage, list[Item]]:
        """Render a stored template for a person with their current recommendations; nothing
        is sent, tracked or logged. Returns the message and the recommended items."""
        template = self.definitions.template(tenant, template_name)
        if template is None:
            raise NotFound(
                f"no template {template_name!r}",
                field="template",
                accepted="the name of a stored template",
            )
        user = self.stores.users.get(tenant, user_id)
        if user is None:
            raise NotFound(
                f"no user {user_id!r}", field="user_id", accepted="the id of an existing user"
            )
        items = (
            self.recommend(tenant, user_id, template.recommendations)
            if template.recommendations
            else []
        )
        found = self.stores.catalog.get_many(tenant, list(cart_item_ids)) if cart_item_ids else {}
        discount = {"percent": discount_percent, "code": "PREVIEW"} if discount_percent else None
        insights = self.worker.insights
        rendered = preview(
            template,
            user,
            recommendations=items,
            cart=[found[i] for i in cart_item_ids if i in found],
            discount=discount,
            event=event,
            renderer=self.definitions.renderer,
            insights=insights(tenant, user_id)
            if insights is not None and uses_insights(template) else None,
        )
        return rendered, items

    def forget_in_campaigns(self, tenant: str, subjects: Sequence[str]) -> int:
        """Erasure hook: the subjects' user and anonymous ids leave stored campaign audiences."""
        ids = {*subjects, *(s.removeprefix("anon:") for s in subjects)}
        return self.definitions.forget_in_campaigns(tenant, ids)

    def send_campaign(self, tenant: str, document: dict[str, Any]) -> tuple[Campaign, int]:
        """Validate a campaign document (templates included), store it, then schedule it;
        returns the campaign and how many messages were newly enqueued. Nothing refused is
        stored."""
        campaign = self.definitions.parse_campaign(document)
        self._check_campaign(tenant, campaign)
        self.definitions.save_campaign(tenant, document)
        return campaign, self.schedule_campaign(tenant, campaign)

    def schedule_campaign(self, tenant: str, campaign: Campaign) -> int:
        """Enqueue one message per person in the audience (idempotent per campaign and person);
        returns how many were newly enqueued. A test campaign enqueues each tested person's
        variant; with a winner rule the held-back people wait for :meth:`decide_message_tests`."""
        self._check_campaign(tenant, campaign)
        created = self._enqueue_campaign(tenant, campaign)
        if campaign.winner is not None:
            stored = self.definitions.message_test(tenant, campaign.name)
            if stored is None or stored.enabled:
                self.definitions.save_message_test(
                    tenant, campaign.name,
                    {"status": "testing", "decide_at": campaign.test_end().isoformat()},
                    pending=True,
                )
        return created

    def _check_campaign(self, tenant: str, campaign: Campaign) -> None:
        if self.definitions.template(tenant, campaign.template) is None:
            raise InvalidInput(
                f"campaign {campaign.name!r} uses unknown template {campaign.template!r}",
                field="template",
                accepted="the name of a stored template",
            )
        for index, variant in enumerate(campaign.variants or []):
            if variant.template and self.definitions.template(tenant, variant.template) is None:
                raise InvalidInput(
                    f"variant {variant.name!r} uses unknown template {variant.template!r}",
                    field=f"variants.{index}.template",
                    accepted="the name of a stored template",
                )
            if variant.subject:
                try:
                    self.definitions.renderer.compile(variant.subject, html=False)
                except InvalidInput as exc:
                    raise InvalidInput(
                        exc.message, field=f"variants.{index}.subject", accepted=exc.accepted
                    ) from exc

    def _enqueue_campaign(
        self, tenant: str, campaign: Campaign, rest_variant: str | None = None
    ) -> int:
        users: Iterable[User] = self.users(tenant)
        if campaign.segment is not None:
            if self.segment_members is None:
                raise InvalidInput(
                    "campaigns by segment need the insights service", field="segment",
                    accepted="no segment in this process",
                )
            member = self.segment_members(tenant, campaign.segment)
            users = (u for u in users if member(u.user_id))
        return schedule_campaign(
            self.state.outbox,
            tenant,
            campaign,
            users,
            send_time=self.send_time_for(tenant),
            now=self.clock(),
            rest_variant=rest_variant,
        )

    def campaign(self, tenant: str, name: str) -> Campaign:
        """A stored campaign; NotFound names ``name``."""
        stored = self.definitions.store.get(tenant, CAMPAIGN, name)
        if stored is None:
            raise NotFound(f"no campaign {name!r}", field="name",
                           accepted="the name of a stored campaign")
        return self.definitions.parse_campaign(stored.body)

    def test_results(
        self, tenant: str, name: str, now: datetime | None = None
    ) -> tuple[Campaign, ExperimentResult | None, TestData, dict[str, Any]]:
        """The analysis of a test campaign so far: the experiments engine's statistics over
        the recorded sends, opens, clicks, purchases and unsubscribes of its test phase."""
        campaign = self.campaign(tenant, name)
        if not campaign.variants:
            raise InvalidInput(f"campaign {name!r} is not a test (it has no variants)",
                               field="name", accepted="a campaign with variants")
        now = now or self.clock()
        experiment = campaign.experiment()
        start = min([a.send_at for a in campaign.arms()] + [campaign.send_at])
        events = self.stores.events.scan(
            tenant, since=start - timedelta(minutes=1),
            types=[EventType.MESSAGE_SENT.value, EventType.EMAIL_OPEN.value,
                   EventType.EMAIL_CLICK.value, EventType.PURCHASE.value],
        )
        data = samples_from_sends(
            campaign.name, [v.name for v in experiment.variants], events,
            unsubscribed=lambda user: self.state.suppressions.is_suppressed(
                tenant, user, campaign.channel),
        )
        result = analyse_test(experiment, data, now=now)
        stored = self.definitions.message_test(tenant, name)
        decision = dict(stored.body) if stored is not None else None
        return campaign, result, data, result_document(experiment, result, data, decision)

    def journey_step_results(
        self, tenant: str, journey: str, step_id: str, *, days: float = 90.0,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """The analysis of a journey step's A/B/n test over its sends of the last ``days``:
        the same statistics as a test campaign (opens, clicks, conversions, revenue per
        recipient, unsubscribes as the guardrail)."""
        found = self.definitions.journey(tenant, journey)
        if found is None:
            raise NotFound(f"no journey {journey!r}", field="name",
                           accepted="the name of a stored journey")
        definition = found[0]
        step = next((s for s in definition.steps if s.id == step_id), None)
        if not isinstance(step, SendStep) or not step.variants:
            tested = [s.id for s in definition.steps if isinstance(s, SendStep) and s.variants]
            raise NotFound(f"journey {journey!r} has no send step {step_id!r} with variants",
                           field="step", accepted=", ".join(tested) or "none in this journey")
        now = now or self.clock()
        experiment = step_experiment(definition.name, step.id, step.variants,
                                     step.primary_metric)
        events = self.stores.events.scan(
            tenant, since=now - timedelta(days=days),
            types=[EventType.MESSAGE_SENT.value, EventType.EMAIL_OPEN.value,
                   EventType.EMAIL_CLICK.value, EventType.PURCHASE.value],
        )
        data = samples_from_sends(
            experiment.name, [v.name for v in experiment.variants], events,
            unsubscribed=lambda user: self.state.suppressions.is_suppressed(
                tenant, user, step.channel),
        )
        result = analyse_test(experiment, data, now=now)
        return {"journey": definition.name, "step": step.id, "test": experiment.name,
                **result_document(experiment, result, data, None)}

    def decide_message_tests(self, now: datetime | None = None) -> int:
        """For every test campaign with a winner rule still testing: once its time has come (or
        every variant reached ``min_recipients``), choose the winner and enqueue it for the
        people held back — once (the dedup key is the campaign's). Returns messages enqueued."""
        now = now or self.clock()
        enqueued = 0
        for tenant in self.definitions.store.tenants(MESSAGE_TEST):
            for stored in self.definitions.store.list(tenant, MESSAGE_TEST, enabled_only=True):
                try:
                    enqueued += self._decide(tenant, stored.name, now)
                except NotFound:  # the campaign was deleted: nothing left to decide
                    self.definitions.save_message_test(
                        tenant, stored.name, {"status": "abandoned"}, pending=False)
                except PersonifyError:  # one broken test must not stop the others
                    log.exception("message test %s/%s not decided", tenant, stored.name)
        return enqueued

    def _decide(self, tenant: str, name: str, now: datetime) -> int:
        campaign, result, data, _ = self.test_results(tenant, name, now)
        rule = campaign.winner
        assert rule is not None
        due = now >= campaign.test_end()
        sampled = rule.min_recipients is not None and all(
            t["sent"] >= rule.min_recipients for t in data.totals.values()
        )
        if result is None or not (due or sampled) or not result.final:
            return 0
        decision = choose_winner(result, campaign.experiment(), rule.if_no_winner)
        sent = 0
        if decision.winner is not None:
            sent = self._enqueue_campaign(tenant, campaign, rest_variant=decision.winner)
        self.definitions.save_message_test(tenant, name, {
            "status": "decided", "winner": decision.winner, "significant": decision.significant,
            "reason": decision.reason, "decided_at": now.isoformat(), "sent_to_rest": sent,
            "rule": rule.if_no_winner,
        }, pending=False)
        log.info("message test %s/%s: %s (%d enqueued for the rest)", tenant, name,
                 decision.reason, sent)
        return sent

    def emit(self, tenant: str, event: Event) -> None:
        """Tracking sink: an open / click becomes a Personify event (and reaches journeys)."""
        result = self.ingestor.ingest(tenant, [event])
        for rejection in result.rejected:
            log.info("tracking event %s not stored: %s", event.event_id, rejection.message)

    # -- webhook channels -----------------------------------------------------------------------

    def channel_list(self, tenant: str) -> list[dict[str, Any]]:
        """Every webhook channel the tenant can send through, without secrets."""
        found = [c.public("settings") for c in self.channels.configured.values()]
        for channel, stored in self.definitions.stored_channels(tenant):
            found.append({**channel.public("api"), "updated_at": stored.updated_at})
        return found

    def save_channel(self, tenant: str, document: dict[str, Any]) -> dict[str, Any]:
        channel = self.definitions.save_channel(
            tenant, document, allow_http=self.channels.allow_http,
            allow_hosts=self.channels.allow_hosts, reserved=set(self.channels.configured),
        )
        return channel.public("api")

    # -- the background loop --------------------------------------------------------------------

    def run_once(self, *, max_batches: int = 50) -> int:
        """One round: daily jobs when due, journey ticks, then outbox batches until idle (at
        most ``max_batches``). Returns the messages handled."""
        now = self.clock()
        if self._last_scan is None or now - self._last_scan >= timedelta(days=1):
            self._last_scan = now
            for tenant in self.definitions.journey_tenants():
                self.fit_send_time(tenant, now)
            self.scan_users(now)
            self.state.item_views.prune(now - MAX_VIEWED_WITHIN)
            self.state.item_changes.prune(now - ITEM_CHANGE_MAX_AGE)
        self.process_item_changes(now)
        self.tick(now)
        if self._last_decide is None or now - self._last_decide >= DECIDE_EVERY:
            self._last_decide = now
            self.decide_message_tests(now)
        return self.worker.run_until_idle(max_batches=max_batches)

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Run rounds every ``poll_s`` seconds until ``stop`` is set."""
        stop = stop or self._stop
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:  # the loop must survive one bad round
                log.exception("messaging round failed; retrying in %.1f s", self.poll_s)
            stop.wait(self.poll_s)

    def start(self) -> None:
        """Start the background thread (outbox worker + journey clock)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self.run_forever, name="personify-messaging", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.worker.close()
        self.channels.close()
        self.state.close()


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
