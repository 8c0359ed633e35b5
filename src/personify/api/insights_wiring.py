"""The insights service of one API process, on ``app.state.insights``: profiles read through the
privacy gate (profiling consent, restriction, erasure), dropped from the cache when the person's
events arrive, and forgotten with the person."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from personify.insights.population import PopulationFiles
from personify.insights.segments import SegmentFiles, SegmentTracker
from personify.insights.service import InsightsService


def install_insights(
    app: FastAPI, *, clock: Callable[[], datetime] | None = None
) -> InsightsService:
    """Create ``app.state.insights`` (after the engine and messaging exist): a listener on the
    ingestor, an erasure hook on the engine, and segment entries starting journeys."""
    engine = app.state.engine
    stores = app.state.stores
    now = clock or (lambda: datetime.now(UTC))
    tracker = SegmentTracker(SegmentFiles(app.state.settings.model_dir, now), now)
    messaging = getattr(app.state, "messaging", None)
    if messaging is not None:
        tracker.listeners.append(messaging.on_segment_changed)
    service = InsightsService(
        events=stores.events, users=stores.users, catalog=stores.catalog,
        populations=PopulationFiles(app.state.settings.model_dir),
        may_profile=engine.privacy.gate.may_profile, tracker=tracker, clock=now,
    )
    if messaging is not None:
        messaging.segment_members = service.segment_members
    app.state.ingestor.add_listener(service.on_events)
    engine.forgetters.append(service.forget)
    app.state.insights = service
    return service


async def get_insights(request: Request) -> InsightsService:
    service: InsightsService = request.app.state.insights
    return service


InsightsDep = Annotated[InsightsService, Depends(get_insights)]
