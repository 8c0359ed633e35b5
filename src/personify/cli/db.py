"""``personify db upgrade | current | roles``: the database schema (Alembic migrations shipped
with Personify; the server also upgrades on start, this is for operators who migrate
explicitly) and where each storage role is kept for the current settings."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from personify.cli.context import state_of
from personify.storage.roles import describe
from personify.storage.sql import current_revision, head_revision, upgrade

app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
console = Console(soft_wrap=True)


@app.command("upgrade")
def upgrade_command(ctx: typer.Context) -> None:
    """Bring the database schema to the newest revision (safe to run twice or concurrently)."""
    url = state_of(ctx).settings().database_url
    before = current_revision(url)
    after = upgrade(url)
    if before == after:
        console.print(f"Database already at revision {after}.")
    else:
        console.print(f"Upgraded database from {before or 'empty'} to revision {after}.")


@app.command("current")
def current_command(ctx: typer.Context) -> None:
    """Show the schema revision of the database and the newest one this version ships."""
    url = state_of(ctx).settings().database_url
    current = current_revision(url)
    head = head_revision()
    status = "up to date" if current == head else "run `personify db upgrade`"
    console.print(f"current: {current or 'empty'}  newest: {head}  ({status})")


@app.command("roles")
def roles_command(ctx: typer.Context) -> None:
    """Where each storage role is kept with the current settings (database_url, redis_url,
    model_dir), and the port its adapters implement."""
    settings = state_of(ctx).settings()
    values = {
        "database_url": settings.database_url,
        "redis_url": settings.redis_url,
        "model_dir": settings.model_dir,
    }
    table = Table("role", "setting", "kept in", "port")
    for role, kept in describe(values):
        table.add_row(role.name, role.setting, kept, role.port.split(":")[-1])
    console.print(table)
