"""``personify keys create | list | revoke``: API keys, stored hashed; a secret is shown once."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Column, Table
from rich.text import Text

from personify.cli.context import state_of
from personify.domain import person_tokens
from personify.domain.errors import InvalidInput, NotFound
from personify.domain.keys import Scope
from personify.domain.tenants import validate_tenant_id

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
console = Console(soft_wrap=True)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A label for the key, e.g. 'web shop tracker'.")],
    scope: Annotated[
        list[Scope] | None,
        typer.Option("--scope", "-s", help="ingest, serve, admin, browser (the web "
                     "snippet's public key, docs/web.md) or metrics (Prometheus); repeat for "
                     "several."),
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: the default one).")] = None,
) -> None:
    """Create a key and print its secret ONCE (only a hash is stored)."""
    if not scope:
        raise InvalidInput(
            "a key needs at least one scope",
            field="scope",
            accepted="--scope ingest, --scope serve, --scope admin, --scope browser or "
            "--scope metrics",
        )
    state = state_of(ctx)
    settings = state.settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    if not name.strip():
        raise InvalidInput("the key name is empty", field="name", accepted="a short label")
    record, secret = state.stores(settings).keys.create(tenant, name.strip(), scope)
    scopes = ", ".join(sorted(s.value for s in record.scopes))
    console.print(f"Created key [bold]{record.key_id}[/] ({scopes}) for tenant {record.tenant}.")
    console.print(Panel(Text(secret), title="secret", expand=False))
    console.print(
        "[bold yellow]Store this secret now: it is shown only once and cannot be recovered.[/]"
        " Send it as `Authorization: Bearer <secret>` or `X-API-Key: <secret>`."
    )


@app.command("list")
def list_keys(
    ctx: typer.Context,
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant's keys (default: every tenant).")
    ] = None,
) -> None:
    """List keys (ids, names, scopes, dates; never secrets)."""
    state = state_of(ctx)
    if tenant is not None:
        validate_tenant_id(tenant)
    keys = state.stores().keys.list(tenant)
    if not keys:
        console.print("No API keys. Create one with: personify keys create NAME --scope admin")
        return
    table = Table("tenant", "name", "scopes", "created", "status")
    table.columns.insert(0, Column("key id", no_wrap=True))
    for key in keys:
        status = (
            f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "[green]active[/]"
        )
        table.add_row(
            key.key_id,
            key.tenant,
            key.name,
            ", ".join(sorted(s.value for s in key.scopes)),
            f"{key.created_at:%Y-%m-%d %H:%M}",
            status,
        )
    console.print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key id shown by `keys list`.")],
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    if not state_of(ctx).stores().keys.revoke(key_id):
        raise NotFound(
            f"no API key {key_id!r}",
            field="key_id",
            accepted="a key id listed by `personify keys list`",
        )
    console.print(f"Revoked key {key_id}.")


@app.command("person-token-secret")
def person_token_secret(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: the default one).")] = None,
) -> None:
    """Print the tenant's secret for signing per-person tokens on the site's backend
    (derived from PERSONIFY_PERSON_TOKEN_SECRET; see docs/security.md)."""
    settings = state_of(ctx).settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    if settings.person_token_secret is None:
        raise InvalidInput(
            "person tokens are not enabled", field="person_token_secret",
            accepted="PERSONIFY_PERSON_TOKEN_SECRET (at least 24 characters)",
        )
    secret = person_tokens.tenant_secret(
        settings.person_token_secret.get_secret_value().encode(), tenant
    )
    console.print(f"Person-token secret of tenant {tenant} (hex; keep it on the server side):")
    console.print(Text(secret.hex()), soft_wrap=True)
