"""``build_messaging(...)``: the :class:`MessagingRuntime` of one process, built from settings,
the stores, the ingestor and the recommendation chain (the API, the CLI's ``messages`` commands
and the worker all use it).

Where things are kept: definitions (templates, journeys, campaigns) in the main database
(table ``personify_messaging_definitions``, SQLite or PostgreSQL); the outbox, journey runs,
unsubscribes and the inbox where :mod:`personify.messaging.state_stores` puts them: in the
PostgreSQL database, in a SQLite file next to a SQLite database (``messaging_db_path``), or in
memory for ``memory://``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from personify.domain.errors import ConfigurationError, InvalidInput
from personify.domain.items import Item
from personify.ingestion import EventIngestor
from personify.messaging.channels import Sender
from personify.messaging.demo_mailbox import DemoMailbox, MailboxStore
from personify.messaging.guardrails import Guardrails
from personify.messaging.inbox import InboxSender
from personify.messaging.outbox import ConsentCheck, OutboxWorker
from personify.messaging.smtp import SmtpConfig, SmtpSender
from personify.messaging.state_stores import messaging_db_path as messaging_file
from personify.messaging.state_stores import open_state_stores
from personify.messaging.templates import TemplateRenderer, item_url_for
from personify.messaging.tracking import TrackingSigner
from personify.messaging.webhook_channels import ChannelDirectory, WebhookChannel, parse_channel
from personify.privacy.consent import ConsentDefaults, ConsentPolicy
from personify.runtime.messaging import MessagingRuntime, MessagingStores
from personify.runtime.messaging_definitions import MessagingDefinitions
from personify.runtime.online_gate import ConsentsSnapshot
from personify.serving.chain import RecommendationService
from personify.serving.request import MAX_RESULTS, RecommendationRequest
from personify.settings import Settings
from personify.storage.registry import Stores, open_definitions
from personify.storage.sql.database import Database

log = logging.getLogger(__name__)


def messaging_db_path(settings: Settings) -> str | None:
    """The SQLite file of the messaging state; None when it is in memory (``memory://``) or in
    the PostgreSQL database."""
    return messaging_file(settings.database_url, settings.messaging_db_path)


def open_messaging_stores(settings: Settings, database: Database | None = None) -> MessagingStores:
    """The outbox, unsubscribe, inbox and journey-run stores for ``settings`` (in ``database``,
    the app's engine, when the state lives in the database)."""
    opened = open_state_stores(settings.database_url, settings.messaging_db_path, database=database)
    return MessagingStores(
        opened.outbox, opened.suppressions, opened.inbox, opened.runs, opened.item_changes,
        opened.item_views, path=opened.location.path,
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


class ConsentPolicyLike(Protocol):
    def allows(self, tenant: str, user_id: str, purpose: str) -> bool: ...


def marketing_consent(
    stores: Stores, installed: Callable[[], ConsentPolicyLike | None] = lambda: None
) -> ConsentCheck:
    """``(tenant, user_id, purpose) -> allowed`` through the privacy capability's policy: the
    ``installed()`` one when there is one, else the default (opt-in) policy."""
    default = ConsentPolicy(stores.consents)

    def allows(tenant: str, user_id: str, purpose: str) -> bool:
        policy = installed() or default
        return bool(policy.allows(tenant, user_id, purpose))

    def for_people(tenant: str, user_ids: Sequence[str]) -> ConsentCheck:
        """The same decisions for ``user_ids`` from their consent states read in one bulk
        query now (what a batch of events needs: not one read per person); anyone else is
        asked as :func:`allows` does."""
        policy = installed() or default
        current_many = getattr(stores.consents, "current_many", None)
        if not isinstance(policy, ConsentPolicy) or current_many is None or not user_ids:
            return allows
        moment = policy.clock()
        snapshot = ConsentPolicy(
            cast(Any, ConsentsSnapshot(current_many(tenant, list(user_ids), now=moment))),
            policy.defaults,
            clock=lambda: moment,
        )
        known = set(user_ids)

        def check(t: str, user_id: str, purpose: str) -> bool:
            if t != tenant or user_id not in known:
                return allows(t, user_id, purpose)
            return snapshot.allows(t, user_id, purpose)

        return check

    allows.for_people = for_people  # type: ignore[attr-defined]
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
    settings: Settings, signer: TrackingSigner, state: MessagingStores,
    mailbox_store: MailboxStore | None = None,
) -> dict[str, Sender]:
    """Email when ``smtp_host`` is set (in demo mode without it: the demo's mailbox in the
    database, shown by the dashboard), and the in-app inbox."""
    senders: dict[str, Sender] = {"inbox": InboxSender(state.inbox)}
    if settings.demo and not settings.smtp_host and mailbox_store is not None:
        senders["email"] = DemoMailbox(mailbox_store, sender=settings.smtp_from)
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


def build_messaging(
    settings: Settings,
    stores: Stores,
    ingestor: EventIngestor,
    service: RecommendationService,
    *,
    clock: Callable[[], datetime] | None = None,
    consent_policy: Callable[[], ConsentPolicyLike | None] = lambda: None,
) -> MessagingRuntime:
    """The messaging runtime over ``stores`` (which must be SQL: definitions live there); its
    message blocks recommend through ``service``. Nothing starts here (see ``start()``)."""
    if stores.database is None:
        raise ConfigurationError(
            "messaging needs SQL stores for its definitions", field="database_url",
            accepted="sqlite:///path.db, postgresql://..., memory://",
        )
    signer = tracking_signer(settings)
    state = open_messaging_stores(settings, stores.database)
    definitions = MessagingDefinitions(
        open_definitions(stores.engine_url, database=stores.database),
        renderer=TemplateRenderer(item_url=item_url_for(settings.item_url_template)),
        item_links_configured=settings.item_url_template is not None,
    )
    consent = marketing_consent(stores, consent_policy)
    recommend = recommender(service, stores)
    channels = ChannelDirectory(
        configured_channels(settings), definitions.channels,
        allow_http=settings.webhook_allow_http, allow_hosts=settings.webhook_allow_hosts,
    )
    senders = channel_senders(settings, signer, state, definitions.store)
    # the demo's local mailbox is no one's real inbox: it delivers at any hour (no quiet hours)
    demo_mailbox = isinstance(senders.get("email"), DemoMailbox)
    worker = OutboxWorker(
        guardrails=Guardrails(quiet_hours=None) if demo_mailbox else Guardrails(),
        store=state.outbox,
        templates=definitions.template,
        users=stores.users.get,
        senders=senders,
        consent=consent,
        suppressions=state.suppressions,
        recommend=recommend,
        items=stores.catalog.get_many,
        renderer=definitions.renderer,
        signer=signer,
        worker_id=f"api-{secrets.token_hex(4)}",
        channels=channels,
        purposes=ConsentDefaults.parse(None, settings.consent_purposes).purposes,
        concurrency=settings.messaging_worker_threads,
        make_senders=(
            (lambda: channel_senders(settings, signer, state, definitions.store))
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
