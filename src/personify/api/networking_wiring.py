"""The networking service of one API process, on ``app.state.networking``: the network is read
from person -> person events, updated by an ingestion listener, and forgotten with the person."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from personify.domain.consents import Purpose
from personify.domain.users import User
from personify.messaging.introductions import suggest_introduction
from personify.messaging.outbox import enqueue, new_message
from personify.networking.introductions import Introduction
from personify.networking.service import Introductions, NetworkingService, Notify

INTRODUCTION_TEMPLATE = "introduction"
"""The messaging template that asks a recipient about an introduction (the operator writes it;
its ``event`` holds ``introduction_id``, ``from_user_id``, ``from_name``, ``text`` — the
personalized sentence in the recipient's language and tone — and ``expires_at``)."""


def introduction_notifier(app: FastAPI, template: str = INTRODUCTION_TEMPLATE) -> Notify:
    """Ask the recipient through the messaging outbox: a non-transactional email, so consent,
    suppressions, quiet hours and caps apply; at the recipient's best send time; once per
    introduction (the outbox deduplicates)."""

    def notify(tenant: str, intro: Introduction, asker: User | None, recipient: User | None,
               shared: list[str]) -> str:
        messaging = getattr(app.state, "messaging", None)
        if messaging is None:
            return "not sent: messaging is not configured"
        if recipient is None:
            return "not sent: the recipient has no profile to write to"
        if messaging.definitions.template(tenant, template) is None:
            return f"not sent: no messaging template {template!r}"
        sender = asker or User(user_id=intro.from_user_id)
        text = suggest_introduction(sender, recipient, {"interests": shared})
        now = messaging.clock()
        when = messaging.send_time_for(tenant)(recipient, now, timedelta(hours=24))
        message = new_message(
            tenant, intro.to_user_id, template, dedup_key=f"introduction:{intro.introduction_id}",
            channel="email", now=now, not_before=when,
            context={"event": {
                "introduction_id": intro.introduction_id, "from_user_id": intro.from_user_id,
                "from_name": sender.profile.name or sender.user_id, "text": text,
                "expires_at": intro.expires_at.isoformat(),
            }},
        )
        _, created = enqueue(messaging.state.outbox, message)
        return "queued" if created else "already queued"

    return notify


def install_networking(app: FastAPI, *, clock: Callable[[], datetime] | None = None
                       ) -> NetworkingService:
    """Create ``app.state.networking`` (after the engine and messaging exist)."""
    engine = app.state.engine
    stores = app.state.stores
    policy = engine.privacy.policy

    def may_personalize(tenant: str, user_id: str) -> bool:
        return bool(policy.allows(tenant, user_id, Purpose.PERSONALIZATION.value))

    service = NetworkingService(
        stores.events, stores.users, model_dir=app.state.settings.model_dir,
        may_personalize=may_personalize, is_erased=app.state.erasure_check,
        ingest=app.state.ingestor.ingest, notify=introduction_notifier(app),
        clock=clock or (lambda: datetime.now(UTC)),
    )
    app.state.ingestor.add_listener(service.on_events)
    engine.forgetters.append(service.forget)
    app.state.networking = service
    return service


async def get_networking(request: Request) -> NetworkingService:
    service: NetworkingService = request.app.state.networking
    return service


NetworkingDep = Annotated[NetworkingService, Depends(get_networking)]


async def get_introductions(request: Request) -> Introductions:
    return Introductions(request.app.state.networking)


IntroductionsDep = Annotated[Introductions, Depends(get_introductions)]
