"""``mount_dashboard(app)``: the web UI under ``/dashboard`` on the same FastAPI application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from personify.dashboard.guard import DashboardGuard
from personify.dashboard.pages import (
    auth,
    experiments,
    items,
    messaging,
    models,
    overview,
    segments,
    settings_page,
    users,
    web_pages,
)
from personify.dashboard.sessions import LoginThrottle, SessionStore
from personify.dashboard.state import DashboardState
from personify.dashboard.stats import DashboardStats
from personify.runtime.container import Runtime

STATIC_DIR = Path(__file__).parent / "static"
ROUTERS = (
    auth.public,
    auth.router,
    overview.router,
    users.router,
    items.router,
    models.router,
    segments.router,
    experiments.router,
    messaging.router,
    web_pages.router,
    settings_page.router,
)


def mount_dashboard(
    app: FastAPI,
    *,
    results_dir: str | Path = "benchmarks/results",
    stats_max_age: float = 600.0,
    sessions: SessionStore | None = None,
) -> DashboardState:
    """Add the dashboard to ``app`` (call it from ``create_app``, before the app starts).

    Reads the application's services from ``app.state.runtime`` (stores, engine, authenticator,
    ingestor, experiments); message templates stay in the dashboard's in-memory library,
    flagged on their page.
    """
    runtime: Runtime = app.state.runtime
    stores = runtime.stores
    state = DashboardState(
        sessions=sessions or SessionStore(),
        throttle=LoginThrottle(),
        stats=DashboardStats(stores.events, max_age=stats_max_age),
        results_dir=Path(results_dir),
    )
    state.experiments = runtime.experiments.experiments
    state.exposures = runtime.experiments.exposures
    state.experiments_in_memory = False
    app.state.dashboard = state
    runtime.ingestor.add_listener(state.stats.on_events)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.add_middleware(DashboardGuard, sessions=state.sessions, keys=stores.keys)
    return state
