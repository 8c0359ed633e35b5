"""``personify experiments create | list | start | stop | report``: A/B/n tests from the command
line, on the same stores as the API (``--database-url`` / settings)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from personify.cli.context import state_of
from personify.domain.errors import Conflict, InvalidInput, NotFound
from personify.domain.tenants import validate_tenant_id
from personify.experiments.analysis import ExperimentResult
from personify.experiments.definitions import Experiment, ExperimentStatus
from personify.experiments.models import store_checker
from personify.experiments.ports import ExposureRecord
from personify.experiments.service import (
    create_experiment,
    experiment_report,
    get_experiment,
    start_experiment,
    stop_experiment,
)
from personify.storage.model_files import FileModelStore
from personify.storage.registry import Stores
from personify.storage.sql.experiments import SqlAliasStore, SqlExperimentStore, SqlExposureLog

app = typer.Typer(help="Define, start, stop and analyze A/B/n experiments.", no_args_is_help=True)
console = Console(soft_wrap=True)

REPORT_EVENT_TYPES = ("impression", "click", "purchase")

TenantOption = Annotated[str | None, typer.Option(help="Tenant (default: the default one).")]


@dataclass
class _Experiments:
    tenant: str
    stores: Stores
    experiments: SqlExperimentStore[Experiment]
    exposures: SqlExposureLog[ExposureRecord]
    aliases: SqlAliasStore
    models: FileModelStore


def _open(ctx: typer.Context, tenant: str | None) -> _Experiments:
    state = state_of(ctx)
    settings = state.settings()
    stores = state.stores(settings)
    if stores.database is None:  # pragma: no cover - every URL scheme opens a SQL database
        raise InvalidInput("experiments need a SQL database", field="database_url")
    db = stores.database
    return _Experiments(
        validate_tenant_id(tenant or settings.default_tenant),
        stores,
        SqlExperimentStore(db, Experiment.model_validate),
        SqlExposureLog(db, ExposureRecord),
        SqlAliasStore(db),
        FileModelStore(settings.model_dir),
    )


def read_definition(path: Path) -> dict[str, Any]:
    """An experiment definition from a YAML or JSON file."""
    if not path.is_file():
        raise NotFound(f"no file {path}", field="file", accepted="a .yaml, .yml or .json file")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(
            f"{path.name} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}",
            field="file",
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path.name} must hold one mapping", field="file",
                           accepted="name, variants, primary_metric ... at the top level")
    return data


@app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Definition in YAML or JSON.", dir_okay=False)],
    tenant: TenantOption = None,
) -> None:
    """Create a draft experiment from a definition file (see docs/experiments.md)."""
    ex = _open(ctx, tenant)
    exp = create_experiment(
        ex.experiments,
        ex.tenant,
        read_definition(file),
        check_models=store_checker(ex.models, ex.tenant),
    )
    variants = ", ".join(v.name for v in exp.variants)
    console.print(
        f"Created experiment [bold]{exp.name}[/] (draft; variants {variants}; layer {exp.layer}, "
        f"traffic {exp.traffic:.0%}). Start it with: personify experiments start {exp.name}"
    )


@app.command("list")
def list_experiments(
    ctx: typer.Context,
    tenant: TenantOption = None,
    status: Annotated[
        ExperimentStatus | None, typer.Option(help="Only draft, running or stopped ones.")
    ] = None,
) -> None:
    """List experiments with their status, traffic and exposed units."""
    ex = _open(ctx, tenant)
    found = ex.experiments.list(ex.tenant, status=status)
    if not found:
        console.print("No experiments. Create one with: personify experiments create FILE.yaml")
        return
    table = Table(title=f"experiments of {ex.tenant}")
    # Names and counts are what people copy: they never wrap, the other columns give way.
    table.add_column("name", no_wrap=True)
    for header in ("status", "layer", "traffic", "variants"):
        table.add_column(header)
    table.add_column("exposed", no_wrap=True)
    table.add_column("started")
    table.add_column("stopped")
    for exp in found:
        exposed = ex.exposures.count(ex.tenant, exp.name)
        table.add_row(
            exp.name,
            str(exp.status),
            exp.layer,
            f"{exp.traffic:.0%}",
            ", ".join(v.name for v in exp.variants),
            ", ".join(f"{v}: {n}" for v, n in sorted(exposed.items())) or "-",
            f"{exp.start_at:%Y-%m-%d %H:%M}" if exp.start_at else "-",
            f"{exp.stop_at:%Y-%m-%d %H:%M}" if exp.stop_at else "-",
        )
    console.print(table)


@app.command("start")
def start(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The experiment's name.")],
    tenant: TenantOption = None,
) -> None:
    """Start a draft: it takes a free traffic range of its layer and begins assigning."""
    ex = _open(ctx, tenant)
    exp = start_experiment(
        ex.experiments, ex.tenant, name, check_models=store_checker(ex.models, ex.tenant)
    )
    lo, hi = exp.bucket_range or (0, 0)
    console.print(f"Started {exp.name}: buckets {lo}..{hi - 1} of layer {exp.layer}.")


@app.command("stop")
def stop(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The experiment's name.")],
    tenant: TenantOption = None,
) -> None:
    """Stop a running experiment: assignment ends, the report stays readable."""
    ex = _open(ctx, tenant)
    exp = stop_experiment(ex.experiments, ex.tenant, name)
    console.print(f"Stopped {exp.name}. Read it with: personify experiments report {exp.name}")


@app.command("report")
def report(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The experiment's name.")],
    out: Annotated[
        Path, typer.Option(help="Directory for the Markdown report and the plot.", file_okay=False)
    ] = Path("reports"),
    pre_days: Annotated[
        float, typer.Option(help="Days before the start read for CUPED.", min=0, max=365)
    ] = 14,
    tenant: TenantOption = None,
) -> None:
    """Analyze exposed units: print the verdict and a table, write <name>.md and a plot."""
    ex = _open(ctx, tenant)
    exp = get_experiment(ex.experiments, ex.tenant, name)
    if exp.start_at is None:
        raise Conflict(f"experiment {name!r} has not started", field="status",
                       accepted="running, stopped")
    since = exp.start_at - timedelta(days=pre_days)
    until = exp.stop_at or datetime.now(UTC)
    events = ex.stores.events.scan(ex.tenant, since=since, until=until, types=REPORT_EVENT_TYPES)
    result, files = experiment_report(
        ex.experiments, ex.exposures, ex.tenant, name, events,
        aliases=ex.aliases.all(ex.tenant), out_dir=out,
    )
    console.print(result_table(result))
    console.print(f"[bold]{result.verdict}[/]")
    for note in result.notes:
        console.print(f"note: {note}")
    for kind, path in sorted(files.items()):
        console.print(f"wrote {kind}: {path}")


def _fmt(x: float, pct: bool = False) -> str:
    if x != x:
        return "-"
    return f"{x:+.1%}" if pct else f"{x:.4g}"


def result_table(result: ExperimentResult) -> Table:
    """Per metric and variant: values, lift with its interval, p-value, significance."""
    srm = "ok" if result.srm.ok else "MISMATCH"
    table = Table(
        "metric", "variant", "units", "control", "variant value", "lift", "lift CI", "p",
        "significant",
        title=f"{result.experiment}: units {result.units}; sample ratio {srm} "
        f"(p = {result.srm.p_value:.3g}); {result.horizon_note}",
    )
    for c in result.comparisons:
        sig = c.significant(result.alpha) and result.final
        table.add_row(
            c.metric + (" (primary)" if c.metric == result.primary_metric else ""),
            c.variant,
            f"{c.n_control} / {c.n_variant}",
            _fmt(c.control_value),
            _fmt(c.variant_value),
            _fmt(c.lift, pct=True),
            f"{_fmt(c.lift_ci[0], pct=True)} .. {_fmt(c.lift_ci[1], pct=True)}",
            f"{(c.p_adjusted if c.p_adjusted is not None else c.p_value):.3g}",
            "[green]yes[/]" if sig else "no",
        )
    return table
