"""``personify privacy export | erase | retention-purge | audit``: data-subject requests and
retention from the command line (the same services as the API)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from personify.cli.context import state_of
from personify.domain.errors import InvalidInput
from personify.domain.events import BUILTIN_EVENT_TYPES
from personify.domain.tenants import validate_tenant_id
from personify.insights.population import PopulationFiles
from personify.insights.service import InsightsService
from personify.messaging.state_stores import state_location
from personify.privacy.export import MessagesReader, export_archive, export_person
from personify.privacy.model_influence import ModelForgetResult
from personify.privacy.runtime import PrivacyRuntime, open_runtime
from personify.runtime.messaging_wiring import open_messaging_stores
from personify.serving.model_registry import BundleRegistry
from personify.settings import Settings
from personify.storage.online import open_online_state
from personify.storage.online.port import OnlineState
from personify.storage.sql.event_types import SqlEventTypes

app = typer.Typer(
    help="Data-subject requests (export, erase), retention purge, audit log.",
    no_args_is_help=True,
)
console = Console(soft_wrap=True)

TenantOption = Annotated[str | None, typer.Option(help="Tenant (default: the default one).")]

def _runtime(settings: Settings, ctx: typer.Context) -> PrivacyRuntime:
    return open_runtime(state_of(ctx).stores(settings), **settings.privacy_options())


def insights_service(runtime: PrivacyRuntime, settings: Settings) -> InsightsService:
    """The insights the server computes, read the same way (through the privacy gate)."""
    return InsightsService(
        events=runtime.events, users=runtime.users, catalog=runtime.catalog,
        populations=PopulationFiles(settings.model_dir), may_profile=runtime.gate.may_profile,
    )


def _online_state(settings: Settings) -> OnlineState | None:
    """The shared (Redis) online state; the in-process one lives in the server process."""
    return open_online_state(settings.redis_url, settings.redis_prefix,
                             key_secret=settings.redis_key_bytes()) if settings.redis_url \
        else None


@app.command("export")
def export(
    ctx: typer.Context,
    user_id: Annotated[str, typer.Argument(help="The person's user id.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (.zip = JSON + CSV archive)")
    ] = None,
    anonymized: Annotated[
        bool, typer.Option(help="Pseudonymize ids and drop personal fields (for analysts).")
    ] = False,
    tenant: TenantOption = None,
) -> None:
    """Everything stored about one person (JSON to stdout, or a file / ZIP archive)."""
    settings = state_of(ctx).settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    runtime = _runtime(settings, ctx)
    state = _online_state(settings)
    try:
        with _messages(settings) as messages:
            insights = insights_service(runtime, settings)
            data = export_person(
                runtime.export_sources(state, messages, insights.export), tenant, user_id
            )
    finally:
        if state is not None:
            state.close()
    if anonymized:
        data = runtime.pseudonyms.anonymize(tenant, data)
    if output is None:
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    payload = export_archive(data) if output.suffix == ".zip" else orjson.dumps(
        data, option=orjson.OPT_INDENT_2
    )
    output.write_bytes(payload)
    console.print(f"Wrote the export of {len(data['events'])} events to {output}.")


@contextmanager
def _messages(settings: Settings) -> Iterator[MessagesReader | None]:
    """The person's messages and inbox entries from the messaging state the server keeps for
    these settings (the PostgreSQL database, or its SQLite file); an empty reader when that file
    does not exist (nothing was ever sent), None for ``memory://`` (the state lives only inside
    a server process)."""
    location = state_location(settings.database_url, settings.messaging_db_path)
    if location.kind == "memory":
        yield None
        return
    if location.path is not None and not Path(location.path).exists():
        yield _no_messages
        return
    stores = open_messaging_stores(settings)
    try:
        reader: MessagesReader = stores.sent_to
        yield reader
    finally:
        stores.close()


def _no_messages(tenant: str, user_id: str) -> list[dict[str, Any]]:
    return []


@app.command("erase")
def erase(
    ctx: typer.Context,
    user_ids: Annotated[list[str], typer.Argument(help="User ids to erase.")],
    anonymous: Annotated[
        bool, typer.Option("--anonymous", help="The ids are anonymous ids, not user ids.")
    ] = False,
    tenant: TenantOption = None,
) -> None:
    """Erase people everywhere: stores, online state (Redis), the served model; print receipts."""
    settings = state_of(ctx).settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    runtime = _runtime(settings, ctx)
    models = runtime.model_store(settings.model_dir)
    bundles = BundleRegistry(models)

    def forget_model(tenant_: str, keys: list[str]) -> ModelForgetResult:
        # under the tenant's model lock, from the promoted version on disk: an erasure running
        # in a server at the same time is kept, not overwritten
        return models.forget(bundles, tenant_, keys)

    state = _online_state(settings)
    try:
        service = runtime.erasure(
            state=state, forget_model=forget_model,
            forgetters=[PopulationFiles(settings.model_dir).forget],  # batch insight scores
        )
        if anonymous:
            results = [service.erase_anonymous(tenant, a) for a in user_ids]
        else:
            results = service.erase_many(tenant, user_ids)
    finally:
        if state is not None:
            state.close()
    table = Table("subject", "receipt", "events", "consents", "profile", "model", "seconds")
    for r in results:
        table.add_row(
            r.subject, r.receipt_id, str(r.events_deleted), str(r.consents_deleted),
            "deleted" if r.profile_deleted else "-", r.model.status, f"{r.seconds:.3f}",
        )
    console.print(table)
    rewritten = sorted({v for r in results for v in r.model.versions_rewritten})
    deleted = sorted({v for r in results for v in r.model.versions_deleted})
    if rewritten or deleted:
        console.print(
            f"Other model versions on disk: {len(rewritten)} rewritten without them "
            f"({', '.join(rewritten) or '-'}), {len(deleted)} deleted for want of an influence "
            f"index ({', '.join(deleted) or '-'})."
        )
    if state is None:
        console.print(
            "No Redis online state is configured: a running server's in-process state forgets "
            "these people on its next restart (use DELETE /v1/users/{id} for an instant effect)."
        )


@app.command("retention-purge")
def retention_purge(
    ctx: typer.Context,
    tenant: TenantOption = None,
    audit_days: Annotated[
        float | None, typer.Option(help="Also delete audit entries older than this many days.")
    ] = None,
) -> None:
    """Delete events older than their type's retention (schedule it, e.g. daily)."""
    settings = state_of(ctx).settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    runtime = _runtime(settings, ctx)
    if not runtime.retention.days and audit_days is None:
        raise InvalidInput(
            "no retention is configured", field="retention_days",
            accepted='retention_days in the config, e.g. {"view": 90, "*": 730}',
        )
    types = BUILTIN_EVENT_TYPES | set(settings.custom_event_types)
    database = getattr(state_of(ctx).stores(settings), "database", None)
    if database is not None:  # the tenant's declared types count as known for "*"
        types |= set(SqlEventTypes(database).declared(tenant))
    deleted = runtime.retention.purge(runtime.events, tenant, known_types=types)
    for event_type, count in sorted(deleted.items()):
        console.print(f"{event_type}: {count} deleted")
    console.print(f"Purged {sum(deleted.values())} expired events.")
    if audit_days is not None:
        cutoff = datetime.now(UTC) - timedelta(days=audit_days)
        console.print(f"Deleted {runtime.audit.delete_older_than(tenant, cutoff)} audit entries.")


@app.command("audit")
def audit(
    ctx: typer.Context,
    user_id: Annotated[str | None, typer.Option(help="Only entries about this person.")] = None,
    key_id: Annotated[str | None, typer.Option(help="Only entries of this key.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    tenant: TenantOption = None,
) -> None:
    """Who (which key) read or changed personal data, newest first."""
    settings = state_of(ctx).settings()
    tenant = validate_tenant_id(tenant or settings.default_tenant)
    runtime = _runtime(settings, ctx)
    subject = runtime.pseudonyms.pseudonym(tenant, user_id) if user_id else None
    entries = runtime.audit.list(tenant, subject=subject, key_id=key_id, limit=limit)
    table = Table("at", "key", "action", "resource", "subject", "status")
    for e in entries:
        table.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", e.key_id, e.action, e.resource,
                      e.subject or "-", str(e.status))
    console.print(table)
