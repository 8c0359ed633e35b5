"""Everything the dashboard keeps for itself (``app.state.dashboard``) and typed access to the
application's services (``app.state.runtime``: stores, engine, authenticator, ingestor)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from fastapi import Request

from personify.dashboard.message_library import TemplateLibrary, example_templates
from personify.dashboard.sessions import LoginThrottle, Session, SessionStore
from personify.dashboard.stats import DashboardStats
from personify.experiments.memory import InMemoryExperimentStore, InMemoryExposureLog
from personify.experiments.ports import ExperimentStore, ExposureLog
from personify.ingestion import EventIngestor
from personify.insights.service import InsightsService
from personify.runtime.auth import Authenticator
from personify.runtime.container import Runtime
from personify.runtime.engine import Engine
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


def runtime(request: Request) -> Runtime:
    """The application's services (``app.state.runtime``)."""
    return cast(Runtime, request.app.state.runtime)


def stores(request: Request) -> Stores:
    return runtime(request).stores


def settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def authenticator(request: Request) -> Authenticator:
    return runtime(request).authenticator


def ingestor(request: Request) -> EventIngestor:
    return runtime(request).ingestor


def engine(request: Request) -> Engine:
    """The online recommendation engine."""
    return runtime(request).engine


def insights(request: Request) -> InsightsService:
    """The insights service."""
    return runtime(request).insights


def session(request: Request) -> Session:
    """The operator's session (the guard put it on the request before any page runs)."""
    return cast(Session, request.state.dashboard_session)
