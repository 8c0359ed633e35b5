"""The insights service of one API process, on ``app.state.insights``: profiles read through the
privacy gate (profiling consent, restriction, erasure), dropped from the cache when the person's
events arrive, and forgotten with the person."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from personify.insights.population import PopulationFiles
from personify.insights.service import InsightsService


def install_insights(
    app: FastAPI, *, clock: Callable[[], datetime] | None = None
) -> InsightsService:
    """Create ``app.state.insights`` (after the engine exists): a listener on the ingestor and
    an erasure hook on the engine."""
    engine = app.state.engine
    stores = app.state.stores
    service = InsightsService(
        events=stores.events, users=stores.users, catalog=stores.catalog,
        populations=PopulationFiles(app.state.settings.model_dir),
        may_profile=engine.privacy.gate.may_profile,
        clock=clock or (lambda: datetime.now(UTC)),
    )
    app.state.ingestor.add_listener(service.on_events)
    engine.forgetters.append(service.forget)
    app.state.insights = service
    return service


async def get_insights(request: Request) -> InsightsService:
    service: InsightsService = request.app.state.insights
    return service


InsightsDep = Annotated[InsightsService, Depends(get_insights)]
