"""Everything the dashboard keeps for itself (``app.state.dashboard``) and typed access to what
the application keeps on ``app.state`` (stores, settings, engine, experiment and message stores).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from fastapi import Request

from personify.dashboard.message_library import TemplateLibrary, example_templates
from personify.dashboard.ports import EngineView, Ingestor, KeyAuthenticator
from personify.dashboard.sessions import LoginThrottle, Session, SessionStore
from personify.dashboard.stats import DashboardStats
from personify.experiments.memory import InMemoryExperimentStore, InMemoryExposureLog
from personify.experiments.ports import ExperimentStore, ExposureLog
from personify.insights.service import InsightsService
from personify.settings import Settings
from personify.storage.registry import Stores


@dataclass
class DashboardState:
    """The dashboard's own objects: sessions, statistics, and fallbacks for stores the
    application has not wired yet (each flagged so the page can say it is in memory)."""

    sessions: SessionStore
    throttle: LoginThrottle
    stats: DashboardStats
    results_dir: Path
    experiments: ExperimentStore = field(default_factory=InMemoryExperimentStore)
    exposures: ExposureLog = field(default_factory=InMemoryExposureLog)
    experiments_in_memory: bool = True
    templates: TemplateLibrary = field(default_factory=example_templates)
    templates_in_memory: bool = True

    def close(self) -> None:
        """Stop background work (statistics builds); call before closing the stores."""
        self.stats.close()


def dashboard(request: Request) -> DashboardState:
    return cast(DashboardState, request.app.state.dashboard)


def stores(request: Request) -> Stores:
    return cast(Stores, request.app.state.stores)


def settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def authenticator(request: Request) -> KeyAuthenticator:
    return cast(KeyAuthenticator, request.app.state.authenticator)


def ingestor(request: Request) -> Ingestor:
    return cast(Ingestor, request.app.state.ingestor)


def engine(request: Request) -> EngineView | None:
    """The online engine once the application has wired it (``app.state.engine``)."""
    return cast(EngineView | None, getattr(request.app.state, "engine", None))


def insights(request: Request) -> InsightsService | None:
    """The insights service once the application has wired it (``app.state.insights``)."""
    return cast(InsightsService | None, getattr(request.app.state, "insights", None))


def app_attribute(request: Request, name: str) -> Any:
    return getattr(request.app.state, name, None)


def session(request: Request) -> Session:
    """The operator's session (the guard put it on the request before any page runs)."""
    return cast(Session, request.state.dashboard_session)
