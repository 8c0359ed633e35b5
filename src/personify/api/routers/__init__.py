"""Every router of the API, registered in one place: a new resource is one line below."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from personify.api.routers import (
    consents,
    decisions,
    event_types,
    events,
    experiments,
    health,
    insights,
    items,
    keys,
    kpis,
    messaging,
    metrics,
    networking,
    pages,
    privacy,
    recommendations,
    segment,
    segments,
    tracking,
    users,
    web,
)

ROUTERS: list[APIRouter] = [
    # the hot paths first: a request is matched against the routes in order
    recommendations.router,
    pages.router,
    events.router,
    event_types.router,
    health.router,
    metrics.router,
    users.router,
    insights.router,
    insights.items_router,
    networking.router,
    networking.intros,
    consents.router,
    items.router,
    keys.router,
    segment.router,
    segments.router,
    experiments.router,
    decisions.router,
    kpis.router,
    privacy.router,
    messaging.router,
    messaging.inbox_router,
    tracking.router,
    web.router,
]


def register_routers(app: FastAPI, extra: list[APIRouter] | None = None) -> None:
    """Include :data:`ROUTERS` (and ``extra``) in ``app``."""
    for router in [*ROUTERS, *(extra or [])]:
        app.include_router(router)
