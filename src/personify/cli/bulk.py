"""``personify import`` and ``personify export``: files of users, items and events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from personify.cli.context import state_of
from personify.cli.setup import LEGAL_BASIS_HELP, choose_basis
from personify.domain.errors import InvalidInput
from personify.jobs.bulk_export import export_events_by_date, export_table
from personify.jobs.bulk_import import DEFAULT_BATCH_SIZE, PRESETS, import_file
from personify.jobs.column_mapping import parse_assignments
from personify.jobs.import_report import ImportReport
from personify.jobs.record_sinks import default_ingestor
from personify.messaging.import_watch import watch_catalog
from personify.privacy.legal_basis import CHOICES, recorded_basis

PARTIAL_IMPORT_EXIT = 1
"""Exit code when the import finished but some rows were rejected (see the error report)."""
console = Console(soft_wrap=True)


def import_command(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="users, items or events (all: with --preset).")],
    file: Annotated[Path, typer.Argument(help=".csv, .jsonl or .parquet (.gz for text).")],
    format: Annotated[
        str | None, typer.Option("--format", help="csv, jsonl or parquet (default: from name).")
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", "-m", help="field=column, e.g. profile.country=Country; repeat."),
    ] = None,
    default: Annotated[
        list[str] | None,
        typer.Option("--default", "-d", help="field=value for empty cells, e.g. type=view."),
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help=f"A built-in mapping: {', '.join(PRESETS)}.")
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: the default one).")] = None,
    errors: Annotated[
        Path | None,
        typer.Option("--errors", help="Write every rejected row here (.csv or .jsonl)."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", "-x", help="Leave out rows whose field matches a pattern "
                     "(item_id=POST, 'item_id=gift_*', type=search; repeat), or ignore a column "
                     "(a bare column name). Counted as skipped, not as errors."),
    ] = None,
    separator: Annotated[str, typer.Option(help="List separator in CSV cells.")] = "|",
    datetime_format: Annotated[
        str | None, typer.Option(help="strptime format of date cells, e.g. '%d/%m/%Y %H:%M'.")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Rows per transaction.")] = DEFAULT_BATCH_SIZE,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    legal_basis: Annotated[
        str | None, typer.Option("--legal-basis", help=LEGAL_BASIS_HELP + " Recorded once.")
    ] = None,
) -> None:
    """Import users, items or events from CSV, JSON Lines or Parquet.

    Good rows are stored even when others are rejected (exit code 1 then), and re-running the
    same file stores nothing twice.
    """
    state = state_of(ctx)
    settings = state.settings()
    stores = state.stores(settings)
    tenant_id = tenant or settings.default_tenant
    basis = recorded_basis(stores.database)
    if basis is None or legal_basis is not None:  # the first import asks (or takes the flag)
        basis = choose_basis(stores, legal_basis, ask=True)
    # price drops / restocks of imported items reach the enabled journeys (docs/messaging.md)
    close_watch = watch_catalog(stores, tenant_id, messaging_db_path=settings.messaging_db_path)
    ctx.call_on_close(close_watch)
    report = import_file(
        file,
        kind,
        stores,
        tenant_id,
        ingestor=default_ingestor(stores, settings.custom_event_types),
        format=format,
        mapping=parse_assignments(map_ or [], option="--map"),
        defaults=parse_assignments(default or [], option="--default"),
        preset=preset,
        separator=separator,
        datetime_format=datetime_format,
        batch_size=batch_size,
        progress=progress,
        error_report_path=errors,
        exclude=exclude or (),
    )
    print_import_report(report)
    if basis is None:
        console.print(
            "[yellow]No legal basis recorded[/]: personalization and profiling are opt-in, so "
            "`personify train` uses only people with a consent recorded here. Record one with "
            f"--legal-basis ({CHOICES}) or `personify init`."
        )
    if report.rejected:
        raise typer.Exit(PARTIAL_IMPORT_EXIT)


def print_import_report(report: ImportReport) -> None:
    """Counts, speed and the first rejected rows."""
    table = Table(show_header=False, box=None)
    table.add_row("rows read", f"{report.rows:,}")
    table.add_row("stored", f"{report.stored:,}")
    table.add_row("duplicates (already stored)", f"{report.duplicates:,}")
    table.add_row("rejected", f"{report.rejected:,}")
    if report.skipped:
        table.add_row("skipped on purpose (--exclude, presets)",
                      f"{report.skipped:,}")
    for kind, count in report.extra_records.items():
        table.add_row(f"{kind} upserted", f"{count:,}")
    table.add_row("time", f"{report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s)")
    console.print(f"[bold]Imported {report.path}[/] ({report.kind})")
    console.print(table)
    if report.errors:
        errors = Table("row", "field", "reason", "accepted", title="first rejected rows")
        for error in report.errors[:10]:
            errors.add_row(str(error.row), error.field or "", error.reason, error.accepted or "")
        console.print(errors)
        where = report.error_report or "pass --errors FILE to keep them all"
        console.print(f"[yellow]{report.rejected:,} row(s) rejected; all of them: {where}[/]")


def export_command(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="users, items or events.")],
    file: Annotated[Path, typer.Argument(help=".csv, .jsonl or .parquet (.gz for text).")],
    format: Annotated[
        str | None, typer.Option("--format", help="csv, jsonl or parquet (default: from name).")
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: the default one).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    partition_by: Annotated[
        str | None,
        typer.Option("--partition-by", help="'date': events as a Parquet dataset, FILE a folder "
                     "with one date=YYYY-MM-DD folder per UTC day (what `personify train "
                     "--engine spark` reads)."),
    ] = None,
) -> None:
    """Export users, items or events to CSV, JSON Lines or Parquet.

    `personify import` reads the file back unchanged.
    """
    state = state_of(ctx)
    settings = state.settings()
    if partition_by is not None:
        if partition_by != "date":
            raise InvalidInput(f"unknown partitioning {partition_by!r}", field="partition_by",
                               accepted="date")
        if kind != "events" or (format or "parquet") != "parquet":
            raise InvalidInput("only events exported as parquet can be partitioned by date",
                               field="partition_by", accepted="events --format parquet")
        report = export_events_by_date(file, state.stores(settings),
                                       tenant or settings.default_tenant, progress=progress)
        console.print(f"Exported {report.rows:,} events to {report.path} (Parquet, one folder "
                      f"per day) in {report.seconds:.1f} s.")
        return
    report = export_table(
        kind,
        file,
        state.stores(settings),
        tenant or settings.default_tenant,
        format,
        progress=progress,
    )
    console.print(
        f"Exported {report.rows:,} {kind} to {report.path} ({report.format}) "
        f"in {report.seconds:.1f} s."
    )


def register(app: typer.Typer) -> None:
    """Add ``import`` and ``export`` to the main app."""
    app.command("import")(import_command)
    app.command("export")(export_command)
