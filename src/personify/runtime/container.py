"""``build_runtime(settings)``: every application service of one process, wired once, in one
place, for every edge (the API's lifespan, the dashboard, the CLI and the messaging worker).

Building connects the parts (store wrappers, ingestion listeners, erasure hooks) and starts
nothing; ``start()`` starts the background work (the engine's model refresh, retraining and
warm-up; the messaging loop when ``messaging_enabled``) and ``close()`` stops it, then closes the
stores when the runtime opened them.

The order of the store wrappers is fixed here (innermost first): the person cache over users and
consents, then the write-through catalogue cache (both in ``build_engine``), the key cache's
revocation hook, and the item-change watcher of messaging over the cached catalogue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from personify.domain.consents import Purpose
from personify.domain.events import EventTypes
from personify.ingestion import EventIngestor
from personify.insights.population import PopulationFiles
from personify.insights.segments import SegmentCounts, SegmentFiles, SegmentTracker
from personify.insights.service import InsightsService
from personify.messaging.item_updates import ItemChangeWatcher
from personify.networking.feed import FeedService
from personify.networking.service import NetworkingService
from personify.privacy.erasure import ErasureResult
from personify.privacy.runtime import PrivacyRuntime
from personify.runtime.auth import Authenticator, ForgettingKeyStore
from personify.runtime.engine import Engine, build_engine
from personify.runtime.erasure_check import CachedErasureCheck
from personify.runtime.experiments import ExperimentsRuntime, open_experiments
from personify.runtime.identity import erase_subjects
from personify.runtime.messaging import MessagingRuntime
from personify.runtime.messaging_wiring import ConsentPolicyLike, build_messaging
from personify.runtime.metrics import Metrics
from personify.runtime.networking import introduction_notifier
from personify.runtime.pages import Pages
from personify.runtime.segment.mapping import SegmentMapper
from personify.runtime.tracing import start_tracing
from personify.runtime.weather import OpenMeteoWeather
from personify.settings import DEMO_ADMIN_KEY, DEMO_BROWSER_KEY, Settings
from personify.storage.catalog_writes import CatalogWriteNotifier
from personify.storage.online.fallback import FallbackOnlineState
from personify.storage.online.memory import MemoryOnlineState
from personify.storage.online.port import OnlineState
from personify.storage.registry import Stores, open_definitions, open_stores
from personify.storage.sql.event_types import SqlEventTypes

Clock = Callable[[], datetime]


def bootstrap_secrets(settings: Settings) -> list[str]:
    """The admin secrets accepted without a key record: the configured one, and the demo key."""
    secrets = [settings.admin_key.get_secret_value()] if settings.admin_key else []
    if settings.demo:
        secrets.append(DEMO_ADMIN_KEY)
    return secrets


@dataclass(frozen=True)
class Runtime:
    """The application services of one process (see the module docstring)."""

    settings: Settings
    stores: Stores
    ingestor: EventIngestor
    engine: Engine
    """The online recommendation engine (state, models, catalogue cache, serving chain)."""
    erasure_check: CachedErasureCheck
    authenticator: Authenticator
    experiments: ExperimentsRuntime
    messaging: MessagingRuntime
    insights: InsightsService
    networking: NetworkingService
    feed: FeedService
    """The networking home feed (people, events, groups, projects, content)."""
    pages: Pages
    """Personalized pages of rows (definitions and composition; see runtime/pages.py)."""
    event_types: SqlEventTypes
    """The tenants' own event types (declared through the API / CLI, no restart)."""
    segment_mapper: SegmentMapper
    clock: Clock
    metrics: Metrics = field(default_factory=Metrics)
    """This process's Prometheus registry (``/metrics``, ``personify worker --metrics-port``)."""
    owns_stores: bool = False
    _lifecycle: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _closed: threading.Event = field(default_factory=threading.Event, repr=False)
    _stop_tracing: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def privacy(self) -> PrivacyRuntime:
        return self.engine.privacy

    @property
    def online_state(self) -> OnlineState:
        return self.engine.state

    def erase_subjects(
        self, tenant: str, *, user_ids: Sequence[str] = (), anonymous_id: str | None = None
    ) -> list[ErasureResult]:
        """Erase people (or one anonymous id) everywhere: stores, online state, served model
        and every capability's erasure hook (messages, exposures, insights, networking)."""
        return erase_subjects(
            self.privacy, self.erasure_check, tenant, user_ids=user_ids,
            anonymous_id=anonymous_id, engine=self.engine,
        )

    def start(self, *, messaging_loop: bool | None = None) -> None:
        """Start the background work (idempotent): the engine's, and the messaging loop in a
        thread when ``messaging_loop`` (by default ``settings.messaging_enabled``; otherwise run
        ``personify messages worker``, which runs the loop in the foreground)."""
        loop = self.settings.messaging_enabled if messaging_loop is None else messaging_loop
        with self._lifecycle:
            if not self._stop_tracing:
                stop = start_tracing(self.settings)
                if stop is not None:
                    self._stop_tracing.append(stop)
            self.engine.start()
            if loop:
                self.messaging.start()

    def close(self) -> None:
        """Stop the background work (messaging first: it sends through the engine and the
        stores), then close the stores when this runtime opened them. Idempotent."""
        with self._lifecycle:
            if self._closed.is_set():
                return
            self._closed.set()
            self.messaging.close()
            self.engine.close()
            self.experiments.close()  # the decisions queued behind requests
            if self.owns_stores:
                self.stores.close()
            while self._stop_tracing:
                self._stop_tracing.pop()()


def build_runtime(
    settings: Settings,
    *,
    stores: Stores | None = None,
    ingestor: EventIngestor | None = None,
    online_state: OnlineState | None = None,
    clock: Clock | None = None,
    segment_track_map: Mapping[str, str] | None = None,
    consent_policy: ConsentPolicyLike | None = None,
) -> Runtime:
    """Every service for ``settings``. Opens (and migrates) ``settings.database_url`` unless
    ``stores`` is given (then the caller closes them). ``clock`` drives messaging and insights
    (the wall clock by default); ``consent_policy`` replaces the default opt-in policy of
    marketing messages. Starts nothing: call ``start()``."""
    owns_stores = stores is None
    stores = stores if stores is not None else open_stores(settings.database_url)
    try:
        return _build(
            settings, stores, owns_stores, ingestor=ingestor, online_state=online_state,
            clock=clock or (lambda: datetime.now(UTC)), segment_track_map=segment_track_map,
            consent_policy=consent_policy,
        )
    except BaseException:
        if owns_stores:
            stores.close()
        raise


def _build(
    settings: Settings,
    stores: Stores,
    owns_stores: bool,
    *,
    ingestor: EventIngestor | None,
    online_state: OnlineState | None,
    clock: Clock,
    segment_track_map: Mapping[str, str] | None,
    consent_policy: ConsentPolicyLike | None,
) -> Runtime:
    declared_types = SqlEventTypes(open_definitions(stores.engine_url, database=stores.database))
    event_types = EventTypes(settings.custom_event_types, declared=declared_types.declared)
    erasure_check = CachedErasureCheck(stores.erasures)
    if ingestor is None:
        ingestor = EventIngestor(stores.events, event_types=event_types, is_erased=erasure_check)
    metrics = Metrics()
    ingestor.outcome_observers.append(metrics.on_ingested)
    engine = build_engine(settings, stores, ingestor, online_state=online_state, metrics=metrics)
    if settings.weather_provider == "open-meteo":
        engine.weather = OpenMeteoWeather(
            settings.weather_url, timeout=settings.weather_timeout_seconds, clock=clock)
        engine.service.enrich_context = engine.weather.enrich
    authenticator = Authenticator(
        stores.keys, bootstrap_secrets=bootstrap_secrets(settings),
        default_tenant=settings.default_tenant,
        browser_secrets=[DEMO_BROWSER_KEY] if settings.demo else [],
    )
    # verified keys are cached for a moment; a revocation through this process ends it at once
    stores.keys = ForgettingKeyStore(stores.keys, authenticator)

    experiments = open_experiments(stores.engine_url, database=stores.database)
    experiments.exposures.on_first = metrics.on_exposure
    ingestor.add_listener(experiments.points.on_events)
    engine.forgetters.append(experiments.forget)

    messaging = build_messaging(
        settings, stores, ingestor, engine.service, clock=clock,
        consent_policy=lambda: consent_policy,
    )
    messaging.worker.observe = metrics.on_message
    engine.forgetters.append(messaging.state.forget)  # erasure reaches the person's messages
    engine.forgetters.append(messaging.forget_in_campaigns)
    ingestor.add_listener(messaging.on_events)
    # price drops and restocks: every catalogue write (PUT / PATCH / :bulk / imports) is
    # compared with the stored item while a tenant has an item-update journey enabled
    stores.catalog = ItemChangeWatcher(
        stores.catalog, messaging.record_item_changes, wants=messaging.wants_item_changes,
        clock=lambda: messaging.clock(),
    )

    # live segments: entries start segment-triggered journeys; campaigns reach members
    tracker = SegmentTracker(SegmentFiles(settings.model_dir, clock), clock,
                             history=SegmentCounts(settings.model_dir))
    tracker.listeners.append(messaging.on_segment_changed)
    insights = InsightsService(
        events=stores.events, users=stores.users, catalog=stores.catalog,
        populations=PopulationFiles(settings.model_dir),
        may_profile=engine.privacy.gate.may_profile, tracker=tracker, clock=clock,
    )
    messaging.segment_members = insights.segment_members
    messaging.worker.insights = insights.template_variables  # person.insights in templates
    if settings.complaint_holdback_days:
        days = settings.complaint_holdback_days
        messaging.worker.hold_back = lambda t, u: insights.complaint_hold(t, u, days)
    engine.service.segments_of = insights.segments_of  # recommendation segment rules
    experiments.segments_of = insights.segments_of  # experiment targeting
    ingestor.add_listener(insights.on_events)
    engine.forgetters.append(insights.forget)

    policy = engine.privacy.policy

    def may_personalize(tenant: str, user_id: str) -> bool:
        return bool(policy.allows(tenant, user_id, Purpose.PERSONALIZATION.value))

    networking = NetworkingService(
        stores.events, stores.users, model_dir=settings.model_dir,
        may_personalize=may_personalize, is_erased=erasure_check,
        ingest=ingestor.ingest, notify=introduction_notifier(lambda: messaging), clock=clock,
        erasures=stores.erasures,
    )
    ingestor.add_listener(networking.on_events)
    engine.forgetters.append(networking.forget)
    # every catalogue write through this process tells the feed at once (its copy of events,
    # groups, projects and posts is otherwise reused for up to POOL_TTL_S)
    catalog = stores.catalog = CatalogWriteNotifier(stores.catalog)
    feed = FeedService(networking, catalog, stores.events, stores.users, clock=clock)
    catalog.listeners.append(feed.items_written)
    ingestor.add_listener(feed.on_events)  # RSVPs, joins, follows count at once
    engine.forgetters.append(feed.forget)
    messaging.new_item_audience = feed.audience  # "new for you" journeys reach them

    pages = Pages(messaging.definitions.store, engine.service, experiments.points, clock=clock)
    ingestor.add_listener(pages.on_events)  # clicks on a row's items reward the row

    observe_state(metrics, settings, engine, messaging)
    track_map = {**settings.segment_track_map, **(segment_track_map or {})}
    return Runtime(
        settings=settings, stores=stores, ingestor=ingestor, engine=engine,
        erasure_check=erasure_check, authenticator=authenticator, experiments=experiments,
        messaging=messaging, insights=insights, networking=networking, feed=feed, pages=pages,
        event_types=declared_types,
        segment_mapper=SegmentMapper(track_map, event_types.accepted), clock=clock,
        metrics=metrics, owns_stores=owns_stores,
    )


def redis_fallback(settings: Settings, state: OnlineState) -> bool:
    """Whether Redis is configured but this process serves from its in-process online state
    (Redis unreachable at start, or failing now)."""
    if isinstance(state, FallbackOnlineState):
        return state.degraded
    return bool(settings.redis_url) and isinstance(state, MemoryOnlineState)


def observe_state(
    metrics: Metrics, settings: Settings, engine: Engine, messaging: MessagingRuntime
) -> None:
    """The gauges read at scrape time: online state, warm-up, served models, outbox depth."""
    probes = metrics.probes
    state = engine.state
    inner = state.fallback if isinstance(state, FallbackOnlineState) else state
    if isinstance(inner, MemoryOnlineState) and not settings.redis_url:
        probes.online_state_people = inner.people_count
    elif isinstance(state, FallbackOnlineState) and isinstance(state.fallback,
                                                                MemoryOnlineState):
        fallback = state.fallback
        probes.online_state_people = lambda: fallback.people_count() if state.degraded else None
    probes.online_state_fallback = lambda: redis_fallback(settings, engine.state)
    probes.warming_up = lambda: (engine.warm_up_thread is not None
                                 and not engine.warm_up_done.is_set())
    probes.models = lambda: [(t, *v) for t, v in sorted(engine.bundles.loaded.items())]
    probes.outbox = messaging.state.outbox.counts
