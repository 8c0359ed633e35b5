"""``install_messaging(app)``: builds the :class:`MessagingRuntime` from settings and the app's
stores, ingestor and recommendation engine, mounts the messaging and tracking routers, listens
to ingestion, and (with ``messaging_enabled``) runs the outbox worker and the journey clock in a
background thread for the app's lifetime.

Where things are kept: definitions (templates, journeys, campaigns) in the main database
(table ``personify_messaging_definitions``, SQLite or PostgreSQL); the outbox, journey runs,
unsubscribes and the inbox in the messaging library's SQLite file (``messaging_db_path``, by
default next to a SQLite database), or in memory for ``memory://``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI

from personify.api.messaging_definitions import MessagingDefinitions
from personify.api.messaging_runtime import MessagingRuntime, MessagingStores
from personify.api.routers import messaging as messaging_router
from personify.api.routers import tracking as tracking_router
from personify.domain.errors import ConfigurationError, InvalidInput
from personify.domain.items import Item
from personify.ingestion import EventIngestor
from personify.messaging.channels import Sender
from personify.messaging.import_watch import messaging_db_path as messaging_file
from personify.messaging.inbox import InboxSender
from personify.messaging.item_updates import ItemChangeWatcher
from personify.messaging.memory_stores import (
    MemoryInboxStore,
    MemoryItemChangeStore,
    MemoryItemViewStore,
    MemoryJourneyStateStore,
    MemoryOutboxStore,
    MemorySuppressionStore,
)
from personify.messaging.outbox import ConsentCheck, OutboxWorker
from personify.messaging.smtp import SmtpConfig, SmtpSender
from personify.messaging.sqlite_stores import (
    SqliteInboxStore,
    SqliteItemChangeStore,
    SqliteItemViewStore,
    SqliteJourneyStateStore,
    SqliteOutboxStore,
    SqliteSuppressionStore,
)
from personify.messaging.tracking import TrackingSigner
from personify.messaging.webhook_channels import ChannelDirectory, WebhookChannel, parse_channel
from personify.privacy.consent import ConsentPolicy
from personify.serving.chain import RecommendationService
from personify.serving.request import MAX_RESULTS, RecommendationRequest
from personify.settings import Settings
from personify.storage.registry import Stores
from personify.storage.sql.messaging_definitions import SqlMessagingDefinitions

log = logging.getLogger(__name__)


def messaging_db_path(settings: Settings) -> str | None:
    """The SQLite file of the messaging state; None means in memory (``memory://``)."""
    return messaging_file(settings.database_url, settings.messaging_db_path)


def open_messaging_stores(settings: Settings) -> MessagingStores:
    """The outbox, unsubscribe, inbox and journey-run stores for ``settings``."""
    path = messaging_db_path(settings)
    if path is None:
        return MessagingStores(
            MemoryOutboxStore(), MemorySuppressionStore(), MemoryInboxStore(),
            MemoryJourneyStateStore(), MemoryItemChangeStore(), MemoryItemViewStore(),
        )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return MessagingStores(
        SqliteOutboxStore(path), SqliteSuppressionStore(path), SqliteInboxStore(path),
        SqliteJourneyStateStore(path), SqliteItemChangeStore(path), SqliteItemViewStore(path),
        path=path,
    )


def tracking_signer(settings: Settings) -> TrackingSigner:
    """The link signer; without ``tracking_secret`` a per-process secret (links then die with
    the process), refused when messaging runs for real."""
    if settings.tracking_secret is not None:
        secret = settings.tracking_secret.get_secret_value()
    elif settings.messaging_enabled:
        raise ConfigurationError(
            "messaging_enabled needs a tracking secret for open / click / unsubscribe links",
            field="tracking_secret",
            accepted="PERSONIFY_TRACKING_SECRET with at least 24 characters",
        )
    else:
        secret = secrets.token_urlsafe(32)
    return TrackingSigner(secret, settings.public_base_url)


def marketing_consent(app: FastAPI, stores: Stores) -> ConsentCheck:
    """``(tenant, user_id, purpose) -> allowed`` through the privacy capability's policy: the
    app's ``consent_policy`` when one is installed, else the default (opt-in) policy."""
    default = ConsentPolicy(stores.consents)

    def allows(tenant: str, user_id: str, purpose: str) -> bool:
        policy = getattr(app.state, "consent_policy", None) or default
        return bool(policy.allows(tenant, user_id, purpose))

    return allows


def recommender(
    service: RecommendationService, stores: Stores
) -> Callable[[str, str, int], list[Item]]:
    """``recommend(tenant, user_id, n)`` for message blocks: the person's current
    recommendations from the serving chain, without logging an impression (the message may
    never be opened; opens and clicks are tracked on their own)."""

    def recommend(tenant: str, user_id: str, n: int) -> list[Item]:
        request = RecommendationRequest(
            user_id=user_id, n=max(1, min(n, MAX_RESULTS)), log_impression=False
        )
        result = service.recommend(tenant, request)
        items = [r.item for r in result.items if r.item is not None]
        missing = [r.item_id for r in result.items if r.item is None]
        if missing:
            found = stores.catalog.get_many(tenant, missing)
            items += [found[i] for i in missing if i in found]
        return items

    return recommend


def channel_senders(
    settings: Settings, signer: TrackingSigner, state: MessagingStores
) -> dict[str, Sender]:
    """Email when ``smtp_host`` is set, and the in-app inbox."""
    senders: dict[str, Sender] = {"inbox": InboxSender(state.inbox)}
    if settings.smtp_host:
        domain = urlsplit(settings.public_base_url).hostname or "personify.local"
        senders["email"] = SmtpSender(
            SmtpConfig(
                host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from,
                message_id_domain=domain,
            ),
            signer,
        )
    return senders


def configured_channels(settings: Settings) -> list[WebhookChannel]:
    """The settings' webhook channels, validated; ConfigurationError names the entry's field
    (``webhook_channels.0.url``)."""
    channels: list[WebhookChannel] = []
    for index, entry in enumerate(settings.webhook_channels):
        document = {**entry.model_dump(), "secret": entry.secret.get_secret_value()}
        try:
            channel = parse_channel(
                document, allow_http=settings.webhook_allow_http,
                allow_hosts=settings.webhook_allow_hosts, field_prefix=f"webhook_channels.{index}.",
            )
        except InvalidInput as exc:
            raise ConfigurationError(exc.message, field=exc.field, accepted=exc.accepted) from exc
        if any(c.name == channel.name for c in channels):
            raise ConfigurationError(
                f"webhook channel {channel.name!r} is configured twice",
                field=f"webhook_channels.{index}.name", accepted="one entry per channel name",
            )
        channels.append(channel)
    return channels


def build_runtime(
    app: FastAPI, *, clock: Callable[[], datetime] | None = None
) -> MessagingRuntime:
    """The runtime for an app made by ``create_app`` (``app.state`` settings, stores,
    ingestor, engine)."""
    settings: Settings = app.state.settings
    stores: Stores = app.state.stores
    ingestor: EventIngestor = app.state.ingestor
    if stores.database is None:
        raise ConfigurationError(
            "messaging needs SQL stores for its definitions", field="database_url",
            accepted="sqlite:///path.db, postgresql://..., memory://",
        )
    signer = tracking_signer(settings)
    state = open_messaging_stores(settings)
    definitions = MessagingDefinitions(SqlMessagingDefinitions(stores.database))
    consent = marketing_consent(app, stores)
    recommend = recommender(app.state.engine.service, stores)
    channels = ChannelDirectory(
        configured_channels(settings), definitions.channels,
        allow_http=settings.webhook_allow_http, allow_hosts=settings.webhook_allow_hosts,
    )
    worker = OutboxWorker(
        store=state.outbox,
        templates=definitions.template,
        users=stores.users.get,
        senders=channel_senders(settings, signer, state),
        consent=consent,
        suppressions=state.suppressions,
        recommend=recommend,
        items=stores.catalog.get_many,
        renderer=definitions.renderer,
        signer=signer,
        worker_id=f"api-{secrets.token_hex(4)}",
        channels=channels,
        concurrency=settings.messaging_worker_threads,
        make_senders=(
            (lambda: channel_senders(settings, signer, state))
            if settings.messaging_worker_threads > 1
            else None
        ),
    )
    runtime = MessagingRuntime(
        stores=stores, state=state, definitions=definitions, ingestor=ingestor, signer=signer,
        worker=worker, consent=consent, recommend=recommend, channels=channels,
        clock=clock or (lambda: datetime.now(UTC)),
    )
    worker.clock = lambda: runtime.clock()  # one clock: tests swap ``runtime.clock``
    return runtime


def install_messaging(app: FastAPI, *, clock: Callable[[], datetime] | None = None) -> None:
    """Wire messaging into an app built by ``create_app`` (call it before ``install_openapi``):
    ``app.state.messaging``, the routers, the ingestion listener, and the background worker
    when ``settings.messaging_enabled``."""
    runtime = build_runtime(app, clock=clock)
    app.state.messaging = runtime
    engine = getattr(app.state, "engine", None)
    if engine is not None:  # erasure reaches the messages of the person too
        engine.forgetters.append(runtime.state.forget)
    app.include_router(messaging_router.router)
    app.include_router(messaging_router.inbox_router)
    app.include_router(tracking_router.router)
    app.state.ingestor.add_listener(runtime.on_events)
    # price drops and restocks: every catalogue write of the app (PUT / PATCH / :bulk) is
    # compared with the stored item while a tenant has an item-update journey enabled
    stores: Stores = app.state.stores
    stores.catalog = ItemChangeWatcher(
        stores.catalog, runtime.record_item_changes, wants=runtime.wants_item_changes,
        clock=lambda: runtime.clock(),
    )
    enabled = bool(app.state.settings.messaging_enabled)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        async with inner(application) as value:
            if enabled:
                runtime.start()
            try:
                yield value
            finally:  # before the inner lifespan closes the stores the worker uses
                runtime.close()

    app.router.lifespan_context = lifespan
