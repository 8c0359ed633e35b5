"""``personify event-types list | put | delete``: a tenant's own event types on the same
database as the API (``PUT /v1/event-types/{name}``); a running server accepts them within
seconds, without a restart, and ``personify train`` weighs them as declared."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from personify.cli.context import state_of
from personify.data.events import DEFAULT_WEIGHTS
from personify.domain.errors import InvalidInput
from personify.domain.events import BUILTIN_EVENT_TYPES, EventTypeDefinition
from personify.domain.tenants import validate_tenant_id
from personify.storage.sql.event_types import SqlEventTypes

app = typer.Typer(help="Declare the tenant's own event types (meaning, training weight).",
                  no_args_is_help=True)
console = Console(soft_wrap=True)

TenantOption = Annotated[str | None, typer.Option(help="Tenant (default: the default one).")]


def _open(ctx: typer.Context, tenant: str | None) -> tuple[SqlEventTypes, str]:
    state = state_of(ctx)
    settings = state.settings()
    stores = state.stores(settings)
    if stores.database is None:
        raise InvalidInput("event types are kept in the database", field="database_url",
                           accepted="a sqlite://, postgresql:// or memory:// URL")
    return SqlEventTypes(stores.database), validate_tenant_id(tenant or settings.default_tenant)


def _weight(weight: float | None) -> str:
    return "-" if weight is None else f"{weight:g}"


@app.command("list")
def list_types(
    ctx: typer.Context, tenant: TenantOption = None,
    builtin: Annotated[bool, typer.Option("--builtin/--declared-only",
                                          help="Also list the built-in types.")] = False,
) -> None:
    """The tenant's declared types (name, weight, needs item, meaning)."""
    types, who = _open(ctx, tenant)
    declared = types.declared(who)
    if not declared and not builtin:
        console.print("no declared event types (personify event-types put NAME --weight W)")
    for name in sorted(declared):
        d = declared[name]
        console.print(f"{name}\t{_weight(d.weight)}\t{'item' if d.needs_item else '-'}\t"
                      f"{d.description or ''}")
    if builtin:
        for name in sorted(BUILTIN_EVENT_TYPES):
            console.print(f"{name}\t{_weight(DEFAULT_WEIGHTS.get(name))}\tbuilt-in")


@app.command("put")
def put(
    ctx: typer.Context,
    name: str,
    weight: Annotated[float | None, typer.Option(
        help="Training weight of one event (negative = negative feedback; omit: stored, "
             "not used as feedback).")] = None,
    description: Annotated[str | None, typer.Option(help="What the event means.")] = None,
    needs_item: Annotated[bool, typer.Option(
        "--needs-item/--any-subject", help="Events of this type must name item_id.")] = False,
    tenant: TenantOption = None,
) -> None:
    """Declare (or redefine) an event type."""
    types, who = _open(ctx, tenant)
    try:
        definition = EventTypeDefinition(description=description, weight=weight,
                                         needs_item=needs_item)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "definition"
        raise InvalidInput(f"{where}: {first['msg']}", field=where) from exc
    created = types.put(who, name, definition)
    console.print(f"{'declared' if created else 'redefined'} {name} for tenant {who} "
                  f"(weight {_weight(weight)})")


@app.command("delete")
def delete(ctx: typer.Context, name: str, tenant: TenantOption = None) -> None:
    """Stop accepting new events of a declared type (stored ones are kept)."""
    types, who = _open(ctx, tenant)
    types.delete(who, name)
    console.print(f"deleted {name} for tenant {who}")
