"""``personify pages list | show | put | delete | view``: personalized pages of rows from the
command line, on the same database as the API (``--database-url`` / settings). ``view`` shows a
page as a person would see it, logging nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console

from personify.cli.context import state_of
from personify.domain.errors import InvalidInput, NotFound
from personify.domain.tenants import validate_tenant_id
from personify.runtime.container import build_runtime
from personify.runtime.pages import PageDefinition, Pages

app = typer.Typer(help="Define and preview personalized pages of rows.", no_args_is_help=True)
console = Console(soft_wrap=True)

TenantOption = Annotated[str | None, typer.Option(help="Tenant (default: the default one).")]


@contextmanager
def _pages(ctx: typer.Context, tenant: str | None) -> Iterator[tuple[Pages, str]]:
    state = state_of(ctx)
    settings = state.settings()
    runtime = build_runtime(settings, stores=state.stores(settings), clock=state.clock)
    try:
        yield runtime.pages, validate_tenant_id(tenant or settings.default_tenant)
    finally:
        runtime.close()


def read_page(path: Path) -> PageDefinition:
    """A page definition from a YAML or JSON file (errors name the file and the field)."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}", field="file",
                           accepted="a readable YAML or JSON page definition") from exc
    try:
        return PageDefinition.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise InvalidInput(f"{path}: {where}: {first['msg']}", field=where) from exc


@app.command("list")
def list_pages(ctx: typer.Context, tenant: TenantOption = None) -> None:
    """The tenant's pages (home always, stored or default)."""
    with _pages(ctx, tenant) as (pages, who):
        for name in pages.names(who):
            stored = "stored" if pages.is_defined(who, name) else "default"
            console.print(f"{name}\t{stored}")


@app.command("show")
def show(ctx: typer.Context, name: str, tenant: TenantOption = None) -> None:
    """A page's definition as JSON."""
    with _pages(ctx, tenant) as (pages, who):
        console.print_json(pages.definition(who, name).model_dump_json())


@app.command("put")
def put(
    ctx: typer.Context,
    name: str,
    file: Annotated[Path, typer.Argument(help="YAML or JSON page definition")],
    tenant: TenantOption = None,
) -> None:
    """Create or replace a page (its row order starts learning afresh)."""
    page = read_page(file)
    with _pages(ctx, tenant) as (pages, who):
        pages.put(who, name, page)
    console.print(f"page {name}: {len(page.rows)} rows stored")


@app.command("delete")
def delete(ctx: typer.Context, name: str, tenant: TenantOption = None) -> None:
    """Delete a stored page (home returns to the default)."""
    with _pages(ctx, tenant) as (pages, who):
        if not pages.delete(who, name):
            raise NotFound(f"no stored page {name!r}", field="name")
    console.print(f"page {name} deleted")


@app.command("view")
def view(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()] = "home",
    user_id: Annotated[str | None, typer.Option("--user", help="the person")] = None,
    language: Annotated[str | None, typer.Option(help="en or ru (default: theirs)")] = None,
    tenant: TenantOption = None,
) -> None:
    """The page as the person would see it now (nothing logged)."""
    with _pages(ctx, tenant) as (pages, who):
        page = pages.render(who, name, user_id=user_id, language=language, log=False)
    for row in page.rows:
        console.print(f"[bold]{row.title}[/bold]  ({row.row_id}: {row.reason})")
        for item in row.items:
            title = item.item.title if item.item is not None and item.item.title else ""
            console.print(f"  {item.item_id}  {title}")
    if not page.rows:
        console.print("no row has items for this person")
