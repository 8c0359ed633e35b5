"""The networking service of one API process, on ``app.state.networking``: the network is read
from person -> person events, updated by an ingestion listener, and forgotten with the person."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request

from personify.domain.consents import Purpose
from personify.networking.service import NetworkingService


def install_networking(app: FastAPI) -> NetworkingService:
    """Create ``app.state.networking`` (after the engine exists)."""
    engine = app.state.engine
    stores = app.state.stores
    policy = engine.privacy.policy

    def may_personalize(tenant: str, user_id: str) -> bool:
        return bool(policy.allows(tenant, user_id, Purpose.PERSONALIZATION.value))

    service = NetworkingService(
        stores.events, stores.users, model_dir=app.state.settings.model_dir,
        may_personalize=may_personalize, is_erased=app.state.erasure_check,
    )
    app.state.ingestor.add_listener(service.on_events)
    engine.forgetters.append(service.forget)
    app.state.networking = service
    return service


async def get_networking(request: Request) -> NetworkingService:
    service: NetworkingService = request.app.state.networking
    return service


NetworkingDep = Annotated[NetworkingService, Depends(get_networking)]
