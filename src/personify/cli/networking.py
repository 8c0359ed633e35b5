"""``personify networking train | people``: the reciprocal people model and one person's list."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.console import Console

from personify.cli.context import state_of
from personify.domain.consents import Purpose
from personify.domain.errors import InvalidInput
from personify.domain.tenants import validate_tenant_id
from personify.jobs.networking import train_networking
from personify.networking.service import NetworkingService
from personify.privacy.runtime import open_runtime

app = typer.Typer(help="Professional networking: people worth meeting.", no_args_is_help=True)
console = Console(soft_wrap=True)

TenantOption = Annotated[str | None, typer.Option(help="Tenant (default: the default one).")]


@app.command("train")
def train(ctx: typer.Context, tenant: TenantOption = None) -> None:
    """Learn who is likely to act towards whom from the person -> person events that profiling
    consent admits; the API uses the new model within seconds."""
    state = state_of(ctx)
    settings = state.settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    stores = state.stores(settings)
    runtime = open_runtime(stores, **settings.privacy_options())
    try:
        result = train_networking(stores, settings.model_dir, tenant,
                                  event_filter=runtime.training().event_filter(tenant))
    except ValueError as exc:
        raise InvalidInput(str(exc), field="events",
                           accepted="at least 10 person -> person events with new pairs") from exc
    console.print(f"Trained the people model for {tenant} on {result.interactions} interactions "
                  f"between {result.people} people in {result.seconds:.1f}s -> {result.path}")


@app.command("people")
def people(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Argument(help="The person's user id.")],
    n: Annotated[int, typer.Option(min=1, max=100, help="How many people.")] = 10,
    tenant: TenantOption = None,
) -> None:
    """One person's people recommendations as JSON (what GET /v1/users/{id}/people answers)."""
    state = state_of(ctx)
    settings = state.settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    stores = state.stores(settings)
    runtime = open_runtime(stores, **settings.privacy_options())
    service = NetworkingService(
        stores.events, stores.users, model_dir=settings.model_dir,
        may_personalize=lambda t, u: runtime.policy.allows(t, u, Purpose.PERSONALIZATION.value),
        is_erased=stores.erasures.is_erased,
    )
    answer = service.people(tenant, user_id, n)
    typer.echo(orjson.dumps(answer.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())
