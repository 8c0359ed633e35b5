"""``personify insights fit | show``: the insights batch job and one person's insights."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import orjson
import typer
from rich.console import Console

from personify.cli.context import state_of
from personify.cli.privacy import insights_service
from personify.domain.errors import InvalidInput
from personify.domain.tenants import validate_tenant_id
from personify.jobs.insights import fit_insights
from personify.privacy.runtime import open_runtime

app = typer.Typer(help="Behavioural profiles, predictions and segments.", no_args_is_help=True)
console = Console(soft_wrap=True)

TenantOption = Annotated[str | None, typer.Option(help="Tenant (default: the default one).")]


def _as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"bad --as-of {value!r}", field="as_of",
                           accepted="an ISO date or date-time, e.g. 2011-09-01") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("fit")
def fit(
    ctx: typer.Context,
    tenant: TenantOption = None,
    as_of: Annotated[str | None, typer.Option(
        help="Use events up to this date (ISO); default: now.")] = None,
) -> None:
    """Fit the population artefact (BG/NBD, Gamma-Gamma, RFM edges, price references) from the
    events that profiling consent admits, and save it under the model directory."""
    state = state_of(ctx)
    settings = state.settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    stores = state.stores(settings)
    runtime = open_runtime(stores, **settings.privacy_options())
    result = fit_insights(
        stores, settings.model_dir, tenant,
        event_filter=runtime.training().event_filter(tenant), as_of=_as_of(as_of),
    )
    population = result.population
    bg = population.bgnbd
    console.print(
        f"Fitted insights for {tenant}: {population.customers} customers in "
        f"{result.seconds:.1f}s -> {result.path}"
    )
    if bg is not None:
        console.print(f"BG/NBD r={bg.r:.3f} alpha={bg.alpha:.3f} a={bg.a:.3f} b={bg.b:.3f}")
    else:
        console.print("BG/NBD not fitted: fewer than 20 customers with purchases.")


@app.command("show")
def show(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Argument(help="The person's user id.")],
    tenant: TenantOption = None,
) -> None:
    """One person's insights as JSON (what GET /v1/users/{id}/insights answers)."""
    state = state_of(ctx)
    settings = state.settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    runtime = open_runtime(state.stores(settings), **settings.privacy_options())
    insights = insights_service(runtime, settings).insights(tenant, user_id)
    typer.echo(orjson.dumps(insights.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())
