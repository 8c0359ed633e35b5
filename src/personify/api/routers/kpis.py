"""``/v1/kpis`` (admin): business KPIs computed from stored events over a bounded window, in
total and per day, variant (of one experiment), channel or recommendation source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from personify.api.deps import AdminKey, StoresDep
from personify.api.experiments_runtime import ExperimentsDep, ExperimentsRuntime
from personify.domain._fields import Name
from personify.domain.errors import InvalidInput
from personify.domain.events import Event
from personify.experiments.kpis import RETENTION_WINDOW, kpis_by, retention, revenue_lift, summarize
from personify.experiments.service import get_experiment

router = APIRouter(prefix="/v1/kpis", tags=["kpis"])

DEFAULT_DAYS = 30
MAX_DAYS = 400
MAX_EVENTS = 2_000_000
"""Events read per request at most; beyond it the answer says ``truncated``."""


class RevenueLiftOut(BaseModel):
    variant: str
    units: int
    revenue_per_user: float
    lift: float
    incremental_revenue: float
    roi: float | None


class KpisOut(BaseModel):
    group_by: str
    since: datetime
    until: datetime
    events: int = Field(description="events read")
    truncated: bool = Field(description="the window held more events than are read at once")
    total: dict[str, Any]
    retention_90d: float | None = Field(
        description="share of units back within 90 days; null when the window is shorter"
    )
    groups: dict[str, dict[str, Any]]
    revenue_lift: list[RevenueLiftOut] | None = None


def _variant_maps(
    runtime: ExperimentsRuntime, tenant: str, experiment: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Event subject (user id, or ``anon:<id>``) -> variant, from the experiment's exposures:
    every subject of a unit (to group events), and one subject per unit (to count units)."""
    units = {x.unit: x.variant for x in runtime.exposures.exposures(tenant, experiment)}
    subjects = {(u[5:] if u.startswith("user:") else u): v for u, v in units.items()}
    one_per_unit = dict(subjects)
    for user_id, unit in runtime.aliases.all(tenant).items():
        if unit in units:
            subjects[user_id] = units[unit]
            one_per_unit.pop(unit, None)  # a logged-in unit's events carry the user id
            one_per_unit[user_id] = units[unit]
    return subjects, one_per_unit


@router.get("", response_model=KpisOut, summary="KPIs from events, in total and per group")
def kpis(
    key: AdminKey,
    stores: StoresDep,
    runtime: ExperimentsDep,
    group_by: Literal["none", "day", "variant", "channel", "source"] = "day",
    since: datetime | None = None,
    until: datetime | None = None,
    experiment: Annotated[
        Name | None, Query(description="required for group_by=variant")
    ] = None,
) -> KpisOut:
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=DEFAULT_DAYS)
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if since >= until:
        raise InvalidInput("since must be before until", field="since", accepted="since < until")
    if until - since > timedelta(days=MAX_DAYS):
        raise InvalidInput(
            f"the window is longer than {MAX_DAYS} days",
            field="since",
            accepted=f"at most {MAX_DAYS} days",
        )
    assignment: dict[str, str] | None = None
    per_unit: dict[str, str] = {}
    control = None
    if group_by == "variant":
        if experiment is None:
            raise InvalidInput(
                "group_by=variant needs an experiment", field="experiment",
                accepted="an experiment name",
            )
        exp = get_experiment(runtime.experiments, key.tenant, experiment)
        control = exp.control_name
        assignment, per_unit = _variant_maps(runtime, key.tenant, exp.name)
    events: list[Event] = []
    truncated = False
    for event in stores.events.scan(key.tenant, since=since, until=until):
        if len(events) >= MAX_EVENTS:
            truncated = True
            break
        events.append(event)
    groups = (
        {}
        if group_by == "none"
        else {
            k: v.to_dict()
            for k, v in kpis_by(events, group_by, assignment=assignment).items()
        }
    )
    lift = None
    if assignment is not None and control is not None:
        lift = [RevenueLiftOut(**vars(r)) for r in revenue_lift(events, per_unit, control)]
    long_enough = until - since >= 2 * RETENTION_WINDOW
    return KpisOut(
        group_by=group_by,
        since=since,
        until=until,
        events=len(events),
        truncated=truncated,
        total=summarize(events).to_dict(),
        retention_90d=retention(events, as_of=until) if long_enough else None,
        groups=groups,
        revenue_lift=lift,
    )
