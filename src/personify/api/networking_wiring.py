"""The networking service of one API process, on ``app.state.networking``: the network is read
from person -> person events, updated by an ingestion listener, and forgotten with the person."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from personify.domain.consents import Purpose
from personify.networking.service import Introductions, NetworkingService
from personify.runtime.networking import introduction_notifier


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
        ingest=app.state.ingestor.ingest,
        notify=introduction_notifier(lambda: getattr(app.state, "messaging", None)),
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
