"""``personify kpis``: the business KPIs of ``/v1/kpis`` from the command line (the same use
case, :func:`personify.runtime.kpis.tenant_kpis`), in total and per day, variant (of one
experiment), channel or recommendation source, as a table or JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from personify.cli.context import state_of
from personify.domain.errors import InvalidInput
from personify.domain.tenants import validate_tenant_id
from personify.experiments.kpis import GROUPINGS, KpiReport
from personify.runtime.experiments import open_experiments
from personify.runtime.kpis import tenant_kpis

console = Console(soft_wrap=True)

MAX_EVENTS = 10_000_000
"""Events read at most (the command runs off the serving path, so more than the API reads)."""

TABLES = (
    (
        "business",
        (
            ("units", "units", "{:,}"),
            ("impressions", "impr.", "{:,}"),
            ("ctr", "CTR", "{:.2%}"),
            ("conversion_rate", "conv.", "{:.2%}"),
            ("average_order_value", "AOV", "{:.2f}"),
            ("revenue_per_user", "rev/user", "{:.2f}"),
        ),
    ),
    (
        "engagement",
        (
            ("personalized_clicks_per_session", "pers. clicks/session", "{:.3f}"),
            ("time_on_site_seconds", "time on site s", "{:.0f}"),
            ("repeat_visit_share", "repeat visits", "{:.1%}"),
            ("personalized_email_share", "pers. e-mails", "{:.1%}"),
        ),
    ),
    (
        "recommendation update latency (event -> served)",
        (
            ("update_latency_samples", "samples", "{:,}"),
            ("update_latency_p50_ms", "p50 ms", "{:.1f}"),
            ("update_latency_p95_ms", "p95 ms", "{:.1f}"),
            ("update_latency_p99_ms", "p99 ms", "{:.1f}"),
        ),
    ),
)


def register(app: typer.Typer) -> None:
    """Add ``kpis`` as a top-level command."""
    app.command("kpis")(kpis)


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def kpi_tables(report: KpiReport) -> list[Table]:
    """Business, engagement and latency KPIs: one row for the total and one per group."""
    tables = []
    for title, columns in TABLES:
        table = Table(
            report.group_by if report.group_by != "none" else "",
            *(heading for _, heading, _ in columns),
            title=title,
        )
        for name, values in [("total", report.total), *report.groups.items()]:
            table.add_row(name, *(_cell(values.get(k), fmt) for k, _, fmt in columns))
        tables.append(table)
    return tables


def kpis(
    ctx: typer.Context,
    group_by: Annotated[
        str, typer.Option(help=f"Group by one of: {', '.join(GROUPINGS)}.")
    ] = "day",
    since: Annotated[
        datetime | None, typer.Option(help="Window start (ISO time, UTC); default: 30 days ago.")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(help="Window end (ISO time, UTC); default: now.")
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="The experiment whose variants --group-by variant uses.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: the default one).")] = None,
) -> None:
    """KPIs from stored events: CTR of personalized blocks, conversion, AOV, revenue per user,
    clicks per session, time on site, repeat visits, 90-day retention, personalized e-mail share
    and recommendation update latency (p50 / p95 / p99), with the revenue lift per variant."""
    if group_by not in GROUPINGS:
        raise InvalidInput(
            f"unknown grouping {group_by!r}", field="group_by", accepted=", ".join(GROUPINGS)
        )
    state = state_of(ctx)
    settings = state.settings()
    stores = state.stores(settings)
    tenant_id = validate_tenant_id(tenant or settings.default_tenant)
    if group_by == "variant" and experiment is None:
        raise InvalidInput(
            "--group-by variant needs --experiment", field="experiment",
            accepted="an experiment name (personify experiments list)",
        )
    experiments = open_experiments(stores.engine_url, database=stores.database)
    report = tenant_kpis(
        stores.events, experiments, tenant_id, group_by=group_by, since=since, until=until,
        now=datetime.now(UTC), max_events=MAX_EVENTS, experiment=experiment,
    )
    if as_json:
        body = asdict(report)
        body["since"], body["until"] = report.since.isoformat(), report.until.isoformat()
        typer.echo(json.dumps(body, indent=2, default=str))
        return
    console.print(
        f"KPIs {report.since:%Y-%m-%d %H:%M} .. {report.until:%Y-%m-%d %H:%M} UTC "
        f"({report.events:,} events{', truncated' if report.truncated else ''})"
    )
    for table in kpi_tables(report):
        console.print(table)
    if report.retention_90d is not None:
        console.print(f"90-day retention: {report.retention_90d:.1%}")
    for r in report.revenue_lift or []:
        roi = f", ROI {r.roi:.2f}" if r.roi is not None else ""
        console.print(
            f"{r.variant}: {r.units:,} units, revenue/user {r.revenue_per_user:.2f}, "
            f"lift {r.lift:+.1%}, incremental revenue {r.incremental_revenue:,.2f}{roi}"
        )
