"""``/v1/experiments`` (admin): define, list, start, stop and analyze A/B/n tests;
``/v1/assignments`` and ``/v1/exposures`` (serve): which variants a visitor gets, and that one
was actually served."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field

from personify.api.deps import (
    AdminKey,
    EngineDep,
    ExperimentsDep,
    ServeKey,
    StoresDep,
)
from personify.api.routing import KeyFirstRoute
from personify.domain._fields import Identifier, Name, ShortText
from personify.domain.errors import Conflict, InvalidInput
from personify.experiments.analysis import ExperimentResult
from personify.experiments.assignment import Assignment, assign, assignment_unit
from personify.experiments.definitions import (
    Experiment,
    ExperimentStatus,
    Targeting,
    UnitAttributes,
)
from personify.experiments.models import pinned_versions, store_checker
from personify.experiments.service import (
    create_experiment,
    experiment_report,
    get_experiment,
    log_exposure,
    start_experiment,
    stop_experiment,
)
from personify.experiments.stats import Comparison
from personify.runtime.experiments import ExperimentsRuntime

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["experiments"], route_class=KeyFirstRoute)

SERVER_MANAGED = ("status", "bucket_range", "start_at", "stop_at")
REPORT_EVENT_TYPES = ("impression", "click", "purchase")
"""The event types the built-in experiment metrics read."""
MAX_REPORT_EVENTS = 2_000_000

_EXAMPLE = {
    "name": "reco-vs-pop",
    "hypothesis": "personalized blocks raise CTR",
    "variants": [
        {"name": "control", "payload": {"personalized": False}},
        {"name": "personalized", "payload": {}},
    ],
    "traffic": 0.5,
    "layer": "home-block",
    "primary_metric": {"name": "ctr", "kind": "ratio"},
    "guardrail_metrics": [{"name": "revenue", "kind": "mean"}],
    "planned_sample_size": 20000,
}


class ExperimentsOut(BaseModel):
    experiments: list[Experiment]


class ExperimentOut(BaseModel):
    experiment: Experiment
    exposed_units: dict[str, int] = Field(description="units exposed so far, per variant")


class ComparisonOut(BaseModel):
    """A variant against the control on one metric (NaN values are null)."""

    metric: str
    variant: str
    control: str
    method: str
    n_control: int
    n_variant: int
    control_value: float | None
    variant_value: float | None
    control_ci: tuple[float | None, float | None]
    variant_ci: tuple[float | None, float | None]
    diff: float | None
    diff_ci: tuple[float | None, float | None]
    lift: float | None
    lift_ci: tuple[float | None, float | None]
    p_value: float | None
    p_adjusted: float | None
    significant: bool

    @classmethod
    def of(cls, c: Comparison, alpha: float, final: bool) -> ComparisonOut:
        """``significant`` stays false before a fixed horizon (no peeking)."""
        return cls(
            metric=c.metric,
            variant=c.variant,
            control=c.control,
            method=c.method,
            n_control=c.n_control,
            n_variant=c.n_variant,
            control_value=_num(c.control_value),
            variant_value=_num(c.variant_value),
            control_ci=_pair(c.control_ci),
            variant_ci=_pair(c.variant_ci),
            diff=_num(c.diff),
            diff_ci=_pair(c.diff_ci),
            lift=_num(c.lift),
            lift_ci=_pair(c.lift_ci),
            p_value=_num(c.p_value),
            p_adjusted=_num(c.p_adjusted),
            significant=final and c.significant(alpha),
        )


class SampleRatioOut(BaseModel):
    ok: bool
    p_value: float | None
    observed: dict[str, int]
    expected: dict[str, float]


class ReportOut(BaseModel):
    experiment: str
    verdict: str
    control: str
    primary_metric: str
    guardrails: list[str]
    units: dict[str, int] = Field(description="exposed units analyzed, per variant")
    final: bool = Field(description="false before the fixed horizon: significance withheld")
    sequential: bool
    horizon_note: str
    sample_ratio: SampleRatioOut
    comparisons: list[ComparisonOut]
    notes: list[str]
    events_read: int
    since: datetime
    until: datetime

    @classmethod
    def of(
        cls, result: ExperimentResult, events_read: int, since: datetime, until: datetime
    ) -> ReportOut:
        return cls(
            experiment=result.experiment,
            verdict=result.verdict,
            control=result.control,
            primary_metric=result.primary_metric,
            guardrails=result.guardrails,
            units=result.units,
            final=result.final,
            sequential=result.sequential,
            horizon_note=result.horizon_note,
            sample_ratio=SampleRatioOut(
                ok=result.srm.ok,
                p_value=_num(result.srm.p_value),
                observed=result.srm.observed,
                expected=result.srm.expected,
            ),
            comparisons=[
                ComparisonOut.of(c, result.alpha, result.final) for c in result.comparisons
            ],
            notes=result.notes,
            events_read=events_read,
            since=since,
            until=until,
        )


class AssignmentOut(BaseModel):
    experiment: str
    layer: str
    variant: str | None = Field(description="null for holdout units (serve the default)")
    holdout: bool
    payload: dict[str, Any]


class AssignmentsOut(BaseModel):
    unit: str = Field(description="the key the visitor is hashed by (sticky across login)")
    assignments: list[AssignmentOut]


class ExposureIn(BaseModel):
    """The caller served a visitor its variant of ``experiment``."""

    model_config = ConfigDict(extra="forbid")

    experiment: Name
    user_id: Identifier | None = None
    anonymous_id: Identifier | None = None
    variant: Name | None = Field(
        default=None, description="the variant served; checked against the assignment"
    )
    recommendation_id: Identifier | None = None
    timestamp: datetime | None = None


class ExposureOut(BaseModel):
    logged: bool = Field(description="false when the unit was exposed before, or is holdout")
    experiment: str
    unit: str
    variant: str | None


def _num(x: float | None) -> float | None:
    return None if x is None or x != x or x in (float("inf"), float("-inf")) else float(x)


def _pair(pair: tuple[float, float]) -> tuple[float | None, float | None]:
    return _num(pair[0]), _num(pair[1])


@router.post(
    "/experiments",
    response_model=Experiment,
    status_code=201,
    summary="Define an experiment (a draft until started)",
)
def create(
    key: AdminKey,
    runtime: ExperimentsDep,
    engine: EngineDep,
    body: Annotated[dict[str, Any], Body(examples=[_EXAMPLE])],
) -> Experiment:
    for name in SERVER_MANAGED:
        if name in body:
            raise InvalidInput(
                f"{name} is set by the server", field=name, accepted="omit it; use start / stop"
            )
    return create_experiment(
        runtime.experiments,
        key.tenant,
        body,
        check_models=store_checker(engine.models, key.tenant),
    )


@router.get("/experiments", response_model=ExperimentsOut, summary="List experiments")
def list_experiments(
    key: AdminKey,
    runtime: ExperimentsDep,
    layer: Name | None = None,
    status: ExperimentStatus | None = None,
) -> ExperimentsOut:
    return ExperimentsOut(
        experiments=runtime.experiments.list(key.tenant, layer=layer, status=status)
    )


@router.get("/experiments/{name}", response_model=ExperimentOut, summary="One experiment")
def get_one(name: Name, key: AdminKey, runtime: ExperimentsDep) -> ExperimentOut:
    exp = get_experiment(runtime.experiments, key.tenant, name)
    return ExperimentOut(
        experiment=exp, exposed_units=runtime.exposures.count(key.tenant, exp.name)
    )


@router.post(
    "/experiments/{name}/start",
    response_model=Experiment,
    summary="Start: take a free traffic range of the layer and begin assigning (variant model "
    "names are pinned to their newest stored version)",
)
def start(name: Name, key: AdminKey, runtime: ExperimentsDep, engine: EngineDep) -> Experiment:
    started = start_experiment(
        runtime.experiments,
        key.tenant,
        name,
        check_models=store_checker(engine.models, key.tenant),
    )
    runtime.forget_running(key.tenant)
    versions = pinned_versions(started)
    if versions:  # load the variants' models now rather than on their first request
        engine.bundles.preload(key.tenant, versions)
    return started


@router.post(
    "/experiments/{name}/stop",
    response_model=Experiment,
    summary="Stop: free its traffic; the report stays readable",
)
def stop(name: Name, key: AdminKey, runtime: ExperimentsDep) -> Experiment:
    stopped = stop_experiment(runtime.experiments, key.tenant, name)
    runtime.forget_running(key.tenant)
    return stopped


@router.get(
    "/experiments/{name}/report",
    response_model=ReportOut,
    summary="Analysis of exposed units: verdict, metrics with intervals, lift, sample ratio",
)
def report(
    name: Name,
    key: AdminKey,
    runtime: ExperimentsDep,
    stores: StoresDep,
    pre_days: Annotated[
        float, Query(ge=0, le=90, description="days before the start read for CUPED")
    ] = 14,
) -> ReportOut:
    exp = get_experiment(runtime.experiments, key.tenant, name)
    if exp.start_at is None:
        raise Conflict(
            f"experiment {name!r} has not started", field="status", accepted="running, stopped"
        )
    since = exp.start_at - timedelta(days=pre_days)
    until = exp.stop_at or datetime.now(UTC)
    read = 0

    def events() -> Any:
        nonlocal read
        for event in stores.events.scan(
            key.tenant, since=since, until=until, types=REPORT_EVENT_TYPES
        ):
            read += 1
            if read > MAX_REPORT_EVENTS:
                raise InvalidInput(
                    f"more than {MAX_REPORT_EVENTS} events to analyze",
                    field="pre_days",
                    accepted="a shorter pre-period, or `personify experiments report`",
                )
            yield event

    result, _ = experiment_report(
        runtime.experiments,
        runtime.exposures,
        key.tenant,
        name,
        events(),
        aliases=runtime.aliases.all(key.tenant),
    )
    return ReportOut.of(result, read, since, until)


def _assignment_out(a: Assignment, exp: Experiment) -> AssignmentOut:
    payload = dict(exp.variant(a.variant).payload) if a.variant is not None else {}
    return AssignmentOut(
        experiment=a.experiment,
        layer=exp.layer,
        variant=a.variant,
        holdout=a.holdout,
        payload=payload,
    )


def _unit(runtime: ExperimentsRuntime, tenant: str, user_id: str | None, anon: str | None) -> str:
    return assignment_unit(user_id, anon, runtime.aliases.for_tenant(tenant))


@router.get(
    "/assignments",
    response_model=AssignmentsOut,
    summary="The variants this visitor gets (at most one per layer); nothing is logged",
)
def assignments(
    key: ServeKey,
    runtime: ExperimentsDep,
    stores: StoresDep,
    user_id: Identifier | None = None,
    anonymous_id: Identifier | None = None,
    country: ShortText | None = None,
    channel: Name | None = None,
    segment: Annotated[list[Name] | None, Query()] = None,
    layer: Name | None = None,
) -> AssignmentsOut:
    unit = _unit(runtime, key.tenant, user_id, anonymous_id)
    if country is None and user_id is not None:
        profile = stores.users.get(key.tenant, user_id)
        country = profile.profile.country if profile is not None else None
    running = runtime.running(key.tenant)
    live = runtime.live_segments(key.tenant, user_id, running)
    attributes = UnitAttributes(frozenset(segment or ()) | live, country, channel)
    out = []
    for exp in running:
        if layer is not None and exp.layer != layer:
            continue
        got = assign(exp, unit, attributes)
        if got is not None:
            out.append(_assignment_out(got, exp))
    return AssignmentsOut(unit=unit, assignments=out)


@router.post(
    "/exposures",
    response_model=ExposureOut,
    summary="Record that a visitor was actually served its variant (first one counts)",
)
def expose(body: ExposureIn, key: ServeKey, runtime: ExperimentsDep) -> ExposureOut:
    exp = get_experiment(runtime.experiments, key.tenant, body.experiment)
    if exp.status != ExperimentStatus.RUNNING:
        raise Conflict(
            f"experiment {exp.name!r} is {exp.status}", field="experiment", accepted="running"
        )
    unit = _unit(runtime, key.tenant, body.user_id, body.anonymous_id)
    # Targeting was checked when the variant was chosen; the hash alone fixes the variant.
    got = assign(exp.model_copy(update={"targeting": Targeting()}), unit)
    if got is None:
        raise Conflict(
            f"this visitor is not in experiment {exp.name!r}",
            field="experiment",
            accepted="an experiment listed by GET /v1/assignments for this visitor",
        )
    if body.variant is not None and body.variant != (got.variant or exp.control_name):
        raise Conflict(
            f"this visitor is assigned {got.variant or 'holdout'!r}, not {body.variant!r}",
            field="variant",
            accepted=got.variant or exp.control_name,
        )
    logged = log_exposure(
        runtime.exposures,
        key.tenant,
        got,
        timestamp=body.timestamp,
        recommendation_id=body.recommendation_id,
    )
    return ExposureOut(logged=logged, experiment=exp.name, unit=unit, variant=got.variant)
