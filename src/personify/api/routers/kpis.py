"""``/v1/kpis`` (admin): business KPIs computed from stored events over a bounded window, in
total and per day, variant (of one experiment), channel or recommendation source
(:func:`personify.runtime.kpis.tenant_kpis`, which ``personify kpis`` uses too)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from personify.api.deps import AdminKey, ExperimentsDep, StoresDep
from personify.api.routing import KeyFirstRoute
from personify.api.schemas.common import QueryDateTime
from personify.domain._fields import Name
from personify.runtime.kpis import tenant_kpis

router = APIRouter(prefix="/v1/kpis", tags=["kpis"], route_class=KeyFirstRoute)

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
    total: dict[str, Any] = Field(
        description="every KPI of the window; update_latency_* is the time from an event being "
        "acknowledged to the first personalized recommendation served to that visitor after "
        "it (count and p50 / p95 / p99 in milliseconds, null without samples)"
    )
    retention_90d: float | None = Field(
        description="share of units back within 90 days; null when the window is shorter"
    )
    groups: dict[str, dict[str, Any]] = Field(description="the same KPIs per group")
    revenue_lift: list[RevenueLiftOut] | None = None


@router.get("", response_model=KpisOut, summary="KPIs from events, in total and per group")
def kpis(
    key: AdminKey,
    stores: StoresDep,
    runtime: ExperimentsDep,
    group_by: Literal["none", "day", "variant", "channel", "source"] = "day",
    since: QueryDateTime | None = None,
    until: QueryDateTime | None = None,
    experiment: Annotated[
        Name | None, Query(description="required for group_by=variant")
    ] = None,
) -> KpisOut:
    report = tenant_kpis(
        stores.events, runtime, key.tenant, group_by=group_by, since=since, until=until,
        now=datetime.now(UTC), max_events=MAX_EVENTS, experiment=experiment,
    )
    lift = (
        None
        if report.revenue_lift is None
        else [RevenueLiftOut(**vars(r)) for r in report.revenue_lift]
    )
    return KpisOut(
        group_by=report.group_by,
        since=report.since,
        until=report.until,
        events=report.events,
        truncated=report.truncated,
        total=report.total,
        retention_90d=report.retention_90d,
        groups=report.groups,
        revenue_lift=lift,
    )
