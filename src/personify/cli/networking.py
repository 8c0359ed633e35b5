"""``personify networking train | people | feed | propose``: the reciprocal people model, one
person's list, their networking feed, and system-proposed introductions."""

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
from personify.networking.feed import FeedService, parse_shares
from personify.networking.service import Introductions, NetworkingService
from personify.privacy.runtime import open_runtime
from personify.runtime.container import build_runtime

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
    share = result.forward_share
    console.print(f"Reciprocal combination: interest_forward^{share:g} x "
                  f"interest_backward^{1 - share:g} (share chosen on the validation period)")
    console.print(f"Accepts / declines used as explicit labels: {result.decisions}")


@app.command("people")
def people(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Argument(help="The person's user id.")],
    n: Annotated[int, typer.Option(min=1, max=100, help="How many people.")] = 10,
    tenant: TenantOption = None,
) -> None:
    """One person's people recommendations as JSON (what GET /v1/users/{id}/people answers)."""
    tenant, service, _ = _services(ctx, tenant)
    answer = service.people(tenant, user_id, n)
    typer.echo(orjson.dumps(answer.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())


def _services(ctx: typer.Context, tenant: str | None) -> tuple[str, NetworkingService, FeedService]:
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
    return tenant, service, FeedService(service, stores.catalog, stores.events, stores.users)


@app.command("feed")
def feed(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Argument(help="The person's user id.")],
    n: Annotated[int, typer.Option(min=1, max=100, help="How many entries.")] = 20,
    shares: Annotated[str | None, typer.Option(
        help="Per-section shares, e.g. people:0.3,events:0.2,groups:0.1,projects:0.1,"
             "content:0.3 (default: those).")] = None,
    tenant: TenantOption = None,
) -> None:
    """One person's networking feed as JSON (what GET /v1/users/{id}/feed answers)."""
    weights = parse_shares(shares)
    tenant, _, service = _services(ctx, tenant)
    if service.networking.is_erased(tenant, user_id):
        raise InvalidInput(f"user {user_id!r} was erased", field="user_id",
                           accepted="the id of a user who has not been erased")
    answer = service.feed(tenant, user_id, n, weights)
    typer.echo(orjson.dumps(answer.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())


@app.command("propose")
def propose(
    ctx: typer.Context,
    user_ids: Annotated[list[str], typer.Argument(help="The people to propose introductions for.")],
    n: Annotated[int, typer.Option(min=1, max=20, help="Pending proposals to keep per person.")]
    = 3,
    tenant: TenantOption = None,
) -> None:
    """System-proposed introductions (what POST /v1/introductions:propose does): each person's
    best reciprocal matches are asked through the messaging outbox (consent, quiet hours and
    caps apply; sent by the messages worker). Prints the introductions as JSON lines."""
    state = state_of(ctx)
    settings = state.settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    runtime = build_runtime(settings, stores=state.stores(settings), clock=state.clock)
    try:
        flow = Introductions(runtime.networking)
        for user_id in user_ids:
            for view in flow.propose(tenant, user_id, n):
                typer.echo(orjson.dumps(view.model_dump(mode="json")).decode())
    finally:
        runtime.close()
