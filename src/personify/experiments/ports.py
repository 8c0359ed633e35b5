"""Persistence ports of the experiments package, each small and tenant-scoped.

The in-memory adapters live in :mod:`personify.experiments.memory`; SQL adapters implement the
same protocols.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from personify.experiments.bandits import DecisionLog
from personify.experiments.definitions import Experiment, ExperimentStatus


@dataclass(frozen=True)
class ExposureRecord:
    """A unit was actually served a variant (first impression carrying the recommendation id)."""

    experiment: str
    variant: str
    unit: str
    timestamp: datetime
    recommendation_id: str | None = None


class ExperimentStore(Protocol):
    """Experiment definitions, unique by (tenant, name)."""

    def save(self, tenant: str, experiment: Experiment) -> None:
        """Insert or replace the definition named ``experiment.name``."""
        ...

    def get(self, tenant: str, name: str) -> Experiment | None: ...

    def list(
        self, tenant: str, *, layer: str | None = None, status: ExperimentStatus | None = None
    ) -> list[Experiment]: ...


class ExposureLog(Protocol):
    """First exposure of each unit to each experiment; later exposures are ignored."""

    def record(self, tenant: str, exposure: ExposureRecord) -> bool:
        """Store the exposure; False when the unit was already exposed to that experiment."""
        ...

    def exposures(self, tenant: str, experiment: str) -> list[ExposureRecord]: ...


class DecisionLogStore(Protocol):
    """Bandit decisions, unique by (tenant, decision_id), for reward attribution and OPE."""

    def record(self, tenant: str, decision: DecisionLog) -> None: ...

    def get(self, tenant: str, decision_id: str) -> DecisionLog | None: ...

    def scan(self, tenant: str, *, policy: str | None = None) -> Iterable[DecisionLog]: ...
