"""Service functions the API and CLI call: define, start, stop, assign, expose, report.

They take ready ports (:mod:`personify.experiments.ports`) and plain values; nothing here reads
settings or chooses adapters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from personify.domain.errors import Conflict, InvalidInput, NotFound
from personify.domain.events import Event
from personify.experiments.analysis import ExperimentResult, analyze
from personify.experiments.assignment import (
    Assignment,
    allocate_buckets,
    assign,
    assignment_unit,
)
from personify.experiments.definitions import (
    Experiment,
    ExperimentStatus,
    UnitAttributes,
    parse_experiment,
)
from personify.experiments.exposure import samples_from_events
from personify.experiments.ports import ExperimentStore, ExposureLog, ExposureRecord
from personify.experiments.report import write_report

ModelCheck = Callable[[Experiment, bool], Experiment]
"""``check(experiment, pin)``: reject variant model references that name no stored model and,
with ``pin``, replace them by the versions they mean (see ``personify.experiments.models``)."""


def create_experiment(
    store: ExperimentStore,
    tenant: str,
    definition: Mapping[str, Any] | Experiment,
    *,
    check_models: ModelCheck | None = None,
) -> Experiment:
    """Validate and save a new draft; ``Conflict`` when the name exists. With ``check_models``,
    a variant ``model`` that names no stored model is an ``InvalidInput``."""
    exp = parse_experiment(definition)
    if check_models is not None:
        check_models(exp, False)
    if store.get(tenant, exp.name) is not None:
        raise Conflict(f"experiment {exp.name!r} already exists", field="name")
    if exp.status != ExperimentStatus.DRAFT:
        raise InvalidInput("a new experiment starts as draft", field="status", accepted="draft")
    store.save(tenant, exp)
    return exp


def get_experiment(store: ExperimentStore, tenant: str, name: str) -> Experiment:
    exp = store.get(tenant, name)
    if exp is None:
        raise NotFound(f"no experiment named {name!r}", field="name")
    return exp


def start_experiment(
    store: ExperimentStore,
    tenant: str,
    name: str,
    *,
    now: datetime | None = None,
    check_models: ModelCheck | None = None,
) -> Experiment:
    """Draft -> running: take a free bucket range of the layer and stamp ``start_at``. With
    ``check_models``, variant model references are checked again and pinned to versions."""
    exp = get_experiment(store, tenant, name)
    if exp.status != ExperimentStatus.DRAFT:
        raise Conflict(f"experiment {name!r} is {exp.status}", field="status", accepted="draft")
    if check_models is not None:
        exp = check_models(exp, True)
    others = store.list(tenant, layer=exp.layer, status=ExperimentStatus.RUNNING)
    bucket_range = allocate_buckets(exp, others)
    started = exp.model_copy(
        update={
            "status": ExperimentStatus.RUNNING,
            "bucket_range": bucket_range,
            "start_at": now or datetime.now(UTC),
        }
    )
    store.save(tenant, parse_experiment(started))
    return started


def stop_experiment(
    store: ExperimentStore, tenant: str, name: str, *, now: datetime | None = None
) -> Experiment:
    """Running -> stopped: frees its buckets; assignments stop, the analysis stays readable."""
    exp = get_experiment(store, tenant, name)
    if exp.status != ExperimentStatus.RUNNING:
        raise Conflict(f"experiment {name!r} is {exp.status}", field="status", accepted="running")
    stopped = exp.model_copy(
        update={"status": ExperimentStatus.STOPPED, "stop_at": now or datetime.now(UTC)}
    )
    store.save(tenant, stopped)
    return stopped


def assign_unit(
    store: ExperimentStore,
    tenant: str,
    *,
    user_id: str | None,
    anonymous_id: str | None,
    aliases: MutableMapping[str, str],
    attributes: UnitAttributes | None = None,
    layer: str | None = None,
) -> list[Assignment]:
    """Assignments of one visitor in every running experiment (at most one per layer).

    ``aliases`` (user id -> unit key) keeps the assignment sticky across login.
    """
    unit = assignment_unit(user_id, anonymous_id, aliases)
    out = []
    for exp in store.list(tenant, layer=layer, status=ExperimentStatus.RUNNING):
        got = assign(exp, unit, attributes)
        if got is not None:
            out.append(got)
    return out


def log_exposure(
    log: ExposureLog,
    tenant: str,
    assignment: Assignment,
    *,
    timestamp: datetime | None = None,
    recommendation_id: str | None = None,
) -> bool:
    """Record that the unit was actually served its variant; holdout units are not analyzed."""
    if assignment.variant is None:
        return False
    return log.record(
        tenant,
        ExposureRecord(
            assignment.experiment,
            assignment.variant,
            assignment.unit,
            timestamp or datetime.now(UTC),
            recommendation_id,
        ),
    )


def experiment_report(
    store: ExperimentStore,
    log: ExposureLog,
    tenant: str,
    name: str,
    events: Iterable[Event],
    *,
    aliases: Mapping[str, str] | None = None,
    out_dir: str | Path | None = None,
    now: datetime | None = None,
) -> tuple[ExperimentResult, dict[str, Path]]:
    """Analyze exposed units; with ``out_dir`` also write the Markdown report and the plot."""
    exp = get_experiment(store, tenant, name)
    data = samples_from_events(exp, log.exposures(tenant, name), events, aliases=aliases)
    result = analyze(exp, data, now=now)
    files = write_report(result, out_dir) if out_dir is not None else {}
    return result, files
