"""``personify init`` and ``personify status``: the legal basis of the data as an explicit,
recorded choice, and where this installation keeps its database and models."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from personify.cli.context import state_of
from personify.domain.errors import ConfigurationError, InvalidInput
from personify.domain.tenants import validate_tenant_id
from personify.privacy.legal_basis import (
    CHOICES,
    DESCRIPTIONS,
    LegalBasis,
    RecordedBasis,
    parse_basis,
    record_basis,
    recorded_basis,
)
from personify.storage.registry import Stores

console = Console(soft_wrap=True)

LEGAL_BASIS_HELP = (
    "Legal basis of the imported people's data: consent (collected elsewhere), "
    "legitimate-interest, or none (only people with a consent recorded here are personalized)."
)


def choose_basis(stores: Stores, given: str | None, *, ask: bool) -> RecordedBasis | None:
    """Record ``given`` (or, when ``ask`` and the terminal is interactive, the answer to a
    prompt); returns the installation's basis afterwards (None: still none recorded)."""
    db = stores.database
    if db is None:  # pragma: no cover - every URL scheme opens a SQL database
        raise ConfigurationError("the legal basis needs a SQL database", field="database_url")
    if given is None and ask and sys.stdin.isatty():
        console.print("What is the legal basis for personalizing with the imported data?")
        for basis in LegalBasis:
            console.print(f"  [bold]{basis.value}[/]: {DESCRIPTIONS[basis]}")
        given = typer.prompt("legal basis", default=LegalBasis.CONSENT.value)
    if given is None:
        return recorded_basis(db)
    return record_basis(db, parse_basis(given, field="legal_basis"))


def init_command(
    ctx: typer.Context,
    legal_basis: Annotated[
        str | None, typer.Option("--legal-basis", help=LEGAL_BASIS_HELP)
    ] = None,
) -> None:
    """Create the database and record the legal basis of the data (asked when not given on an
    interactive terminal); prints where the database and the models live."""
    state = state_of(ctx)
    settings = state.settings()
    stores = state.stores(settings)
    chosen = choose_basis(stores, legal_basis, ask=True)
    if chosen is None:
        raise InvalidInput(
            "personify init needs the legal basis of the data", field="legal_basis",
            accepted=f"--legal-basis {CHOICES.replace(', ', ' | ')}",
        )
    console.print(f"[green]initialized[/green] {settings.database_url}")
    console.print(f"  legal basis: {chosen.basis.value}: {DESCRIPTIONS[chosen.basis]}")
    console.print(f"  models: {settings.model_dir}")
    console.print("  next: personify import events FILE.csv ..., then personify train")


def status_command(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: the default one).")] = None,
) -> None:
    """Where the database and the model versions are, the recorded legal basis, the data held
    and the promoted model."""
    state = state_of(ctx)
    settings = state.settings()
    stores = state.stores(settings)
    who = validate_tenant_id(tenant or settings.default_tenant)
    basis = recorded_basis(stores.database)
    from personify.privacy.runtime import open_runtime

    models = open_runtime(stores, **settings.privacy_options()).model_store(settings.model_dir)
    versions = models.list(who)
    promoted = next((m for m in versions if m.promoted), None)
    rows = [
        ("database", settings.database_url),
        ("model directory", settings.model_dir),
        ("tenant", who),
        ("legal basis",
         f"{basis.basis.value}: {DESCRIPTIONS[basis.basis]} (recorded {basis.recorded_at[:19]})"
         if basis is not None
         else "[yellow]not recorded[/]: personalization and profiling are opt-in; run "
         "`personify init --legal-basis ...`"),
        ("events", f"{stores.events.count(who):,}"),
        ("people", f"{stores.users.count(who):,}"),
        ("items", f"{stores.catalog.count(who):,}"),
        ("model versions", f"{len(versions):,}"),
        ("promoted model",
         f"{promoted.version} ({promoted.events_used:,} events)" if promoted else "none yet"),
    ]
    for name, value in rows:  # one line each, never cut: paths are shown whole
        console.print(f"{name + ':':17} {value}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``init`` and ``status`` to the main app."""
    app.command("init")(init_command)
    app.command("status")(status_command)
