"""The experiments' objects of one process: the SQL
adapters of the experiment ports, the alias map of sticky assignment, and the live bandit
decision points (whose reward listener is registered on the ingestor). The experiments role
opens by database URL like every other (:func:`open_experiments`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from personify.experiments.bandits import DecisionLog
from personify.experiments.definitions import Experiment, ExperimentStatus
from personify.experiments.ports import ExposureRecord
from personify.runtime.decision_log import QueuedDecisionLog
from personify.runtime.decision_points import DecisionPoints
from personify.storage.registry import role_database
from personify.storage.sql.database import Database
from personify.storage.sql.experiments import (
    SqlAliasStore,
    SqlDecisionLogStore,
    SqlDecisionPointStore,
    SqlExperimentStore,
    SqlExposureLog,
)

RUNNING_CACHE_SECONDS = 5.0
"""How long the serving path reuses a tenant's list of running experiments."""

@dataclass
class ExperimentsRuntime:
    """Everything the experiments, decisions and KPI routes need."""

    experiments: SqlExperimentStore[Experiment]
    exposures: SqlExposureLog[ExposureRecord]
    decisions: QueuedDecisionLog
    """The decision log; pages' decisions are written behind the request."""
    aliases: SqlAliasStore
    points: DecisionPoints
    database: Database | None = None
    owns_database: bool = False
    segments_of: Callable[..., frozenset[str]] | None = None
    """``(tenant, user_id, segment ids, strict=False)``: the person's live segments among
    those (set by the runtime), so experiments target live segments."""
    _running: dict[str, tuple[float, list[Experiment]]] = field(default_factory=dict)

    def running(self, tenant: str) -> list[Experiment]:
        """The tenant's running experiments, cached for a few seconds (the serving hot path)."""
        now = time.monotonic()
        cached = self._running.get(tenant)
        if cached is not None and now - cached[0] < RUNNING_CACHE_SECONDS:
            return cached[1]
        found = self.experiments.list(tenant, status=ExperimentStatus.RUNNING)
        self._running[tenant] = (now, found)
        return found

    def live_segments(self, tenant: str, user_id: str | None,
                      running: Sequence[Experiment]) -> frozenset[str]:
        """The person's live segments among those the running experiments target."""
        wanted = sorted({s for e in running for s in e.targeting.segments})
        if not wanted or user_id is None or self.segments_of is None:
            return frozenset()
        return self.segments_of(tenant, user_id, wanted, strict=False)

    def forget(self, tenant: str, subjects: Sequence[str]) -> int:
        """Erasure hook: the subjects' exposures (under every unit key they had) and aliases."""
        aliases = self.aliases.for_tenant(tenant)
        units: set[str] = set()
        removed = 0
        for subject in subjects:
            if subject.startswith("anon:"):
                units.add(subject)
                continue
            units.add(f"user:{subject}")
            alias = aliases.get(subject)
            if alias is not None:
                units.add(alias)
            removed += int(self.aliases.delete_user(tenant, subject))
        return removed + self.exposures.delete_units(tenant, sorted(units))

    def forget_running(self, tenant: str) -> None:
        """Drop the cache after a start or stop in this process."""
        self._running.pop(tenant, None)

    def close(self) -> None:
        """Write the decisions queued behind requests, then dispose the database when
        :func:`open_experiments` opened it for a URL."""
        self.decisions.close()
        if self.owns_database and self.database is not None:
            self.database.dispose()


def open_experiments(url: str, *, database: Database | None = None) -> ExperimentsRuntime:
    """The experiments for the database ``url`` (SQLite, PostgreSQL or ``memory://``), on the
    shared ``database`` when given (``open_experiments(stores.engine_url,
    database=stores.database)``)."""
    db, owns = role_database(url, database)
    decisions = QueuedDecisionLog(SqlDecisionLogStore(db, DecisionLog.from_dict))
    return ExperimentsRuntime(
        experiments=SqlExperimentStore(db, Experiment.model_validate),
        exposures=SqlExposureLog(db, ExposureRecord),
        decisions=decisions,
        aliases=SqlAliasStore(db),
        points=DecisionPoints(SqlDecisionPointStore(db), decisions),
        database=db,
        owns_database=owns,
    )
