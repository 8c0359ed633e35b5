"""``mount_dashboard(app)``: the web UI under ``/dashboard`` on the same FastAPI application."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    settings_page,
    users,
)
from personify.dashboard.sessions import LoginThrottle, SessionStore
from personify.dashboard.state import DashboardState
from personify.dashboard.stats import DashboardStats

STATIC_DIR = Path(__file__).parent / "static"
ROUTERS = (
    auth.public,
    auth.router,
    overview.router,
    users.router,
    items.router,
    models.router,
    experiments.router,
    messaging.router,
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

    Reads ``app.state.stores``, ``settings``, ``authenticator`` and ``ingestor`` (required) and
    ``engine``, ``experiment_store`` / ``exposure_log`` and ``message_templates`` when present;
    the missing optional ones fall back to in-memory adapters, flagged on their pages.
    """
    stores = app.state.stores
    state = DashboardState(
        sessions=sessions or SessionStore(),
        throttle=LoginThrottle(),
        stats=DashboardStats(stores.events, max_age=stats_max_age),
        results_dir=Path(results_dir),
    )
    _use_app_stores(app, state)
    app.state.dashboard = state
    app.state.ingestor.add_listener(state.stats.on_events)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.add_middleware(DashboardGuard, sessions=state.sessions, keys=stores.keys)
    return state


def _use_app_stores(app: FastAPI, state: DashboardState) -> None:
    experiment_store: Any = getattr(app.state, "experiment_store", None)
    exposure_log: Any = getattr(app.state, "exposure_log", None)
    if experiment_store is not None and exposure_log is not None:
        state.experiments, state.exposures = experiment_store, exposure_log
        state.experiments_in_memory = False
    templates: Any = getattr(app.state, "message_templates", None)
    if templates is not None:
        state.templates, state.templates_in_memory = templates, False
