"""The KPI use case, once for every edge (``GET /v1/kpis`` and ``personify kpis``): the business
KPIs of a tenant's stored events over a bounded window, in total and per day, variant (of one
experiment), channel or recommendation source."""

from __future__ import annotations

from datetime import datetime

from personify.domain.errors import InvalidInput
from personify.experiments.kpis import KpiReport, kpi_report, kpi_window, variant_maps
from personify.experiments.service import get_experiment
from personify.runtime.experiments import ExperimentsRuntime
from personify.storage.ports import EventStore


def tenant_kpis(
    events: EventStore,
    experiments: ExperimentsRuntime,
    tenant: str,
    *,
    group_by: str,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    max_events: int,
    experiment: str | None = None,
) -> KpiReport:
    """The tenant's KPIs in ``[since, until)`` (by default the 30 days before ``now``); reads at
    most ``max_events`` events (the report says ``truncated`` beyond). ``group_by="variant"``
    needs ``experiment``: its variants, the control, and the revenue lift per variant."""
    start, end = kpi_window(since, until, now)
    assignment: dict[str, str] | None = None
    per_unit: dict[str, str] | None = None
    control = None
    if group_by == "variant":
        if experiment is None:
            raise InvalidInput(
                "group_by=variant needs an experiment", field="experiment",
                accepted="an experiment name (personify experiments list)",
            )
        exp = get_experiment(experiments.experiments, tenant, experiment)
        control = exp.control_name
        assignment, per_unit = variant_maps(
            experiments.exposures.exposures(tenant, exp.name), experiments.aliases.all(tenant)
        )
    return kpi_report(
        events.scan(tenant, since=start, until=end),
        group_by=group_by,
        since=start,
        until=end,
        max_events=max_events,
        assignment=assignment,
        per_unit=per_unit,
        control=control,
    )
