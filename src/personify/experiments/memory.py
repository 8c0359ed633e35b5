"""In-memory adapters of the experiments ports (tests, single-process use)."""

from __future__ import annotations

from collections.abc import Iterator

from personify.experiments.bandits import DecisionLog
from personify.experiments.definitions import Experiment, ExperimentStatus
from personify.experiments.ports import ExposureRecord


class InMemoryExperimentStore:
    def __init__(self) -> None:
        self._data: dict[tuple[str, str], Experiment] = {}

    def save(self, tenant: str, experiment: Experiment) -> None:
        self._data[(tenant, experiment.name)] = experiment.model_copy(deep=True)

    def get(self, tenant: str, name: str) -> Experiment | None:
        found = self._data.get((tenant, name))
        return found.model_copy(deep=True) if found is not None else None

    def list(
        self, tenant: str, *, layer: str | None = None, status: ExperimentStatus | None = None
    ) -> list[Experiment]:
        return [
            e.model_copy(deep=True)
            for (t, _), e in sorted(self._data.items())
            if t == tenant
            and (layer is None or e.layer == layer)
            and (status is None or e.status == status)
        ]


class InMemoryExposureLog:
    def __init__(self) -> None:
        self._data: dict[tuple[str, str], dict[str, ExposureRecord]] = {}

    def record(self, tenant: str, exposure: ExposureRecord) -> bool:
        units = self._data.setdefault((tenant, exposure.experiment), {})
        if exposure.unit in units:
            return False
        units[exposure.unit] = exposure
        return True

    def exposures(self, tenant: str, experiment: str) -> list[ExposureRecord]:
        return list(self._data.get((tenant, experiment), {}).values())


class InMemoryDecisionLog:
    def __init__(self) -> None:
        self._data: dict[tuple[str, str], DecisionLog] = {}

    def record(self, tenant: str, decision: DecisionLog) -> None:
        self._data[(tenant, decision.decision_id)] = decision

    def get(self, tenant: str, decision_id: str) -> DecisionLog | None:
        return self._data.get((tenant, decision_id))

    def scan(self, tenant: str, *, policy: str | None = None) -> Iterator[DecisionLog]:
        for (t, _), d in self._data.items():
            if t == tenant and (policy is None or d.policy == policy):
                yield d
