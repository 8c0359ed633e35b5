"""The online engine: online state, served models, catalogue cache, the recommendation chain and
impression logging, built from settings and the open stores. ``build_engine`` only builds;
``Engine.start()`` starts its background work (model refresh, retraining, the warm-up replay)."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import cast

from personify.domain.consents import Purpose
from personify.domain.errors import Unavailable
from personify.domain.events import Event
from personify.domain.users import User
from personify.experiments.update_latency import UpdateLatencyTracker
from personify.ingestion import EventIngestor
from personify.jobs.retrain_lock import RetrainLock
from personify.jobs.scheduler import RetrainScheduler, train_in_subprocess
from personify.privacy.erasure import Forgetter
from personify.privacy.model_versions import ErasureAwareModelStore
from personify.privacy.replay import Replay, ReplayFence
from personify.privacy.runtime import PrivacyRuntime
from personify.runtime.identity import open_privacy
from personify.runtime.metrics import Metrics
from personify.runtime.online_gate import BatchGate
from personify.runtime.weather import OpenMeteoWeather
from personify.serving.catalog_cache import CatalogCache, WriteThroughCatalog
from personify.serving.chain import RecommendationService
from personify.serving.factor_source import UserVectorUpdater
from personify.serving.impressions import ImpressionLogger
from personify.serving.model_registry import BundleRegistry
from personify.serving.repetition import SharedShownItems, ShownStore
from personify.settings import Settings
from personify.storage.online import open_online_state
from personify.storage.online.fallback import FallbackOnlineState
from personify.storage.online.memory import MemoryOnlineState
from personify.storage.online.port import OnlineState, OnlineStateConfig
from personify.storage.person_cache import (
    CachedConsentStore,
    CachedPreferenceStore,
    CachedUserStore,
)
from personify.storage.registry import Stores, open_person_cache

log = logging.getLogger(__name__)


@dataclass
class Engine:
    state: OnlineState
    models: ErasureAwareModelStore
    bundles: BundleRegistry
    catalogs: CatalogCache
    service: RecommendationService
    impressions: ImpressionLogger
    warnings: list[str]
    privacy: PrivacyRuntime
    scheduler: RetrainScheduler | None = None
    warm_up_stop: threading.Event = field(default_factory=threading.Event)
    warm_up_thread: threading.Thread | None = None
    forgetters: list[Forgetter] = field(default_factory=list)
    """Other capabilities' erasure hooks ``(tenant, subjects) -> records removed``."""
    replay_fence: ReplayFence = field(default_factory=ReplayFence)
    """Erasures forget online state through it, so the warm-up replay cannot undo them."""
    update_latency: UpdateLatencyTracker = field(default_factory=UpdateLatencyTracker)
    """Event -> served recommendation latency, stamped on impressions (the KPI)."""
    preload: Callable[[threading.Event], None] | None = None
    """The warm-up run by ``start()`` in a thread (models, catalogue, replayed online state)."""
    model_refresh_s: float = 5.0
    """How often the promoted version is polled (a promotion is served within this)."""
    warm_up_done: threading.Event = field(default_factory=threading.Event)
    """Set when the start-up warm-up finished (successfully or not: it then loads lazily)."""
    weather: OpenMeteoWeather | None = None
    """The weather provider filling requests' ``context.weather`` (``weather_provider``)."""

    def start(self) -> None:
        """Start the background work (idempotent): the promoted-model refresh, the retraining
        scheduler and the warm-up thread."""
        if self.warm_up_thread is not None:
            return
        self.bundles.start(self.model_refresh_s)
        if self.scheduler is not None:
            self.scheduler.start()
        preload = self.preload
        done = self.warm_up_done

        def warm() -> None:
            try:
                if preload is not None:
                    preload(self.warm_up_stop)
            finally:
                done.set()

        self.warm_up_thread = threading.Thread(
            target=warm, daemon=True, name="personify-warm-up",
        )
        self.warm_up_thread.start()

    def close(self) -> None:
        """Stop the background threads (waiting for the warm-up, which reads the stores)."""
        self.warm_up_stop.set()
        if self.warm_up_thread is not None:
            self.warm_up_thread.join(timeout=30)
        if self.scheduler is not None:
            self.scheduler.stop()
        self.bundles.stop()
        self.impressions.close()
        self.state.close()
        if self.weather is not None:
            self.weather.close()


def open_state(settings: Settings, warnings: list[str]) -> OnlineState:
    """Redis when configured and reachable (with an in-process fallback for outages), else
    in-process; an unreachable Redis at start is a warning, not a failure."""
    if not settings.redis_url:
        return MemoryOnlineState()
    try:
        primary = open_online_state(settings.redis_url, settings.redis_prefix,
                                    key_secret=settings.redis_key_bytes())
    except Unavailable as exc:
        message = f"Redis unavailable ({exc.message}); serving from in-process online state"
        log.warning(message)
        warnings.append(message)
        return MemoryOnlineState()
    return FallbackOnlineState(primary, MemoryOnlineState())


def count_declared_weights(state: OnlineState, ingestor: EventIngestor) -> None:
    """Let the tenants' declared event-type weights count in the live popularity and
    co-occurrence (the ingestor's cached read of the declared types, refreshed every few
    seconds), as they count in training."""
    event_types = ingestor.event_types

    def declared(tenant: str) -> Mapping[str, float]:
        return {name: d.weight for name, d in event_types.of_tenant(tenant).items()
                if d.weight is not None}

    for layer in (state, getattr(state, "primary", None), getattr(state, "fallback", None)):
        config = getattr(layer, "config", None)
        if isinstance(config, OnlineStateConfig):
            layer.config = replace(config, tenant_weights=declared)  # type: ignore[union-attr]


def build_engine(
    settings: Settings,
    stores: Stores,
    ingestor: EventIngestor,
    *,
    online_state: OnlineState | None = None,
    metrics: Metrics | None = None,
) -> Engine:
    warnings: list[str] = []
    metrics = metrics if metrics is not None else Metrics()
    state = online_state if online_state is not None else open_state(settings, warnings)
    count_declared_weights(state, ingestor)
    # profile, consent log and preferences are read on every recommendation: cached per
    # person, invalidated by every write through these stores (across processes via Redis)
    people = open_person_cache(settings.redis_url, settings.redis_prefix,
                               key_secret=settings.redis_key_bytes(), online_state=state,
                               warnings=warnings)
    stores.users = CachedUserStore(stores.users, people)
    stores.consents = CachedConsentStore(stores.consents, people)
    privacy = open_privacy(settings, stores)
    privacy.preferences.store = CachedPreferenceStore(privacy.preferences.store, people)
    # promotions, rollbacks and the versions servers load apply every later erasure
    models = privacy.model_store(settings.model_dir)
    bundles = BundleRegistry(models, prepare=models.servable, vet_pinned=models.clean)
    bundles.on_swap = lambda tenant, _version: metrics.model_swaps.labels(tenant).inc()
    catalogs = CatalogCache(stores.catalog)
    stores.catalog = WriteThroughCatalog(stores.catalog, catalogs)  # type: ignore[assignment]
    fence = ReplayFence()

    def personalization_allowed(tenant: str, user_id: str) -> bool:
        return privacy.policy.allows(tenant, user_id, Purpose.PERSONALIZATION.value)

    def muted(tenant: str, user_id: str) -> set[str]:
        bundle = bundles.get(tenant)
        return privacy.preferences.muted_item_ids(
            tenant, user_id, catalogs.get(tenant), bundle.similar if bundle is not None else None
        )

    def user(tenant: str, user_id: str) -> User | None:
        return stores.users.get(tenant, user_id)

    def history(tenant: str, subject: str) -> Sequence[Event]:
        """Stored recent events of a subject the online state does not know (profiling
        consent and erasure still apply through the privacy gate)."""
        if subject.startswith("anon:"):
            events = stores.events.for_anonymous(tenant, subject[5:], limit=100)
        else:
            events = stores.events.for_user(tenant, subject, limit=100)
        return list(privacy.gate.admit(tenant, events))

    def store_impressions(tenant: str, events: Sequence[Event]) -> None:
        ingestor.ingest(tenant, list(events))

    impressions = ImpressionLogger(store_impressions)
    update_latency = UpdateLatencyTracker()
    service = RecommendationService(
        bundles=bundles.get,
        catalogs=catalogs.get,
        state=state,
        users=user,
        personalization_allowed=personalization_allowed,
        muted=muted,
        log_impression=update_latency.wrap(impressions),
        history=history,
    )
    cold_slots = settings.cold_slots
    service.cold_slots = lambda tenant: cold_slots.get(tenant, cold_slots.get("*", 0))

    gate = BatchGate(privacy.gate, stores.users, stores.consents, stores.erasures)
    user_vectors = UserVectorUpdater(state, bundles.peek)  # ALS fold-in of the live history

    def apply_to_state(tenant: str, events: Sequence[Event]) -> None:
        with_item = [e for e in events if e.item_id is not None]
        if any(e.type not in ingestor.event_types.accepted for e in with_item):
            # a tenant's declared type counts live only with a positive weight
            declared = ingestor.event_types.of_tenant(tenant)
            with_item = [e for e in with_item if e.type not in declared
                         or (declared[e.type].weight or 0.0) > 0]
        allowed = gate.admit(tenant, with_item) if with_item else []
        if allowed:
            state.apply(tenant, allowed)
            user_vectors(tenant, allowed)
            update_latency.acknowledged(tenant, allowed)
        received = [e.received_at for e in with_item if e.received_at is not None]
        if received:  # receipt -> handled by the online state (the batch's oldest event)
            lag = time.time() - min(received).timestamp()
            metrics.online_state_lag.observe(max(0.0, lag))

    ingestor.add_listener(apply_to_state)
    scheduler = None
    if settings.retrain_interval_minutes:
        scheduler = retrain_scheduler(settings, stores, metrics)
        ingestor.add_listener(scheduler.on_events)

    def preload(stop: threading.Event) -> None:
        tenant = settings.default_tenant
        try:
            bundles.get(tenant)
            if not stop.is_set():
                catalogs.get(tenant)
            if isinstance(state, MemoryOnlineState) and not stop.is_set():
                warm_up(state, stores, tenant, admit=gate.admit, stop=stop, fence=fence)
            # the catalogue, the model and the replayed state are millions of long-lived
            # objects: keep them out of the collector's full passes (tail-latency pauses)
            gc.freeze()
        except Exception:
            log.exception("preloading the engine failed; it loads lazily instead")

    engine = Engine(
        state, models, bundles, catalogs, service, impressions, warnings, privacy, scheduler,
        update_latency=update_latency, replay_fence=fence, preload=preload,
        model_refresh_s=settings.model_refresh_seconds,
    )
    engine.forgetters.append(update_latency.forget)
    engine.forgetters.append(bundles.forget_pinned)
    shared = state.primary if isinstance(state, FallbackOnlineState) else state
    if callable(getattr(shared, "record_shown", None)):  # Redis: shared by every worker
        service.shown = SharedShownItems(cast(ShownStore, shared))
    engine.forgetters.append(service.shown.forget)
    return engine


def retrain_scheduler(
    settings: Settings, stores: Stores, metrics: Metrics, *, interval_minutes: float | None = None
) -> RetrainScheduler:
    """The background retrainer of the default tenant: ``personify train`` in a child process,
    one at a time across every process sharing the database (PostgreSQL advisory lock) or the
    model directory (file lock), timed in ``personify_retrain_duration_seconds``."""
    minutes = interval_minutes or settings.retrain_interval_minutes or 10.0
    lock = RetrainLock(settings.model_dir, stores.database)
    return RetrainScheduler(
        metrics.timed_retrain(train_in_subprocess),
        interval_s=minutes * 60,
        every_events=settings.retrain_every_events,
        tenants=[settings.default_tenant],
        lock=lock.attempt,
        on_skipped=lambda _tenant: metrics.retrain_skipped.inc(),
    )


def warm_up(
    state: OnlineState,
    stores: Stores,
    tenant: str,
    *,
    days: float = 30,
    max_events: int = 2_000_000,
    admit: Callable[[str, Sequence[Event]], Sequence[Event]] | None = None,
    stop: threading.Event | None = None,
    fence: ReplayFence | None = None,
) -> int:
    """Rebuild an in-process online state after a restart by replaying recent stored events
    (Redis keeps its state across restarts and needs no warm-up). Returns events replayed.

    Each batch is applied through ``fence`` (the one this process's erasures forget through):
    a person erased after the replay began never reaches the state, even from a batch read
    before the erasure."""
    since = datetime.now(UTC) - timedelta(days=days)
    batch: list[Event] = []
    replayed = 0
    with (fence or ReplayFence()).replaying() as replay:
        try:
            for event in stores.events.scan(tenant, since=since):
                if event.item_id is None:
                    continue
                batch.append(event)
                if len(batch) >= 5_000:
                    _apply_replayed(
                        state, stores, tenant, admit(tenant, batch) if admit else batch, replay
                    )
                    replayed += len(batch)
                    batch = []
                if replayed >= max_events or (stop is not None and stop.is_set()):
                    break
            if batch:
                _apply_replayed(
                    state, stores, tenant, admit(tenant, batch) if admit else batch, replay
                )
                replayed += len(batch)
        except Exception:
            log.exception("online state warm-up stopped after %d events", replayed)
    log.info("online state warmed up with %d events", replayed)
    return replayed


def _apply_replayed(
    state: OnlineState,
    stores: Stores,
    tenant: str,
    events: Sequence[Event],
    replay: Replay | None = None,
) -> None:
    """Apply replayed events (through ``replay``: without the people this process erased since
    the replay began), then forget anyone another process erased while the batch was in flight
    (their tombstone; that process cannot reach this in-process state)."""
    applied = replay.apply(state, tenant, events) if replay is not None else list(events)
    if replay is None:
        state.apply(tenant, applied)
    subjects = {e.subject for e in applied}
    if subjects:
        for subject in stores.erasures.erased_among(tenant, subjects):
            state.forget_user(tenant, subject)
