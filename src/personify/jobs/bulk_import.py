"""Bulk import of users, items and events from CSV, JSON Lines or Parquet files.

The file is streamed in batches (never held whole in memory); each row is mapped to a domain
record (:mod:`personify.jobs.column_mapping`), validated on its own, and the good rows are
stored even when others in the batch are bad. Re-running the same file stores nothing twice:
events are unique by id (taken from a column, or derived from the row content), users and
items are upserted. Example::

    report = import_file("users.csv", "users", stores, "default",
                         mapping={"user_id": "id", "profile.country": "Country"})
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from personify.domain.errors import InvalidInput
from personify.domain.tenants import validate_tenant_id
from personify.ingestion import EventIngestor
from personify.jobs.column_mapping import (
    KINDS,
    Coercer,
    CoercionError,
    ColumnMapping,
    Exclusions,
)
from personify.jobs.import_report import ErrorLog, ImportProgress, ImportReport, RowError
from personify.jobs.online_retail_import import PRESET_NAME, import_online_retail
from personify.jobs.record_sinks import ImportStores, Sink, default_ingestor, sink_for
from personify.jobs.tabular_files import BadRow, SourceFile, infer_format

DEFAULT_BATCH_SIZE = 5_000
PRESETS: tuple[str, ...] = (PRESET_NAME,)


def import_file(
    path: str | Path,
    kind: str,
    stores: ImportStores,
    tenant: str,
    *,
    ingestor: EventIngestor | None = None,
    format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    preset: str | None = None,
    separator: str = "|",
    datetime_format: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    error_report_path: str | Path | None = None,
    exclude: Sequence[str] = (),
) -> ImportReport:
    """Import ``path`` into ``tenant`` and report rows read, stored, duplicates and rejected.

    ``kind`` is users, items or events (``all`` with a preset that writes several kinds);
    ``format`` is inferred from the name (.csv, .csv.gz, .jsonl, .jsonl.gz, .parquet);
    ``mapping`` is target field -> source column (``{"profile.country": "Country"}``);
    ``defaults`` fill fields a row leaves empty; lists in CSV cells are split on ``separator``.
    Rows that cannot be stored go to ``error_report_path`` with their row number, field and
    reason; they never stop the import. ``exclude`` (``--exclude``) leaves out rows on purpose
    (``item_id=POST``: counted as skipped) and ignores columns (a bare column name); see
    :class:`~personify.jobs.column_mapping.Exclusions`.
    """
    validate_tenant_id(tenant)
    if batch_size < 1:
        raise InvalidInput(
            f"batch size {batch_size} is too small", field="batch_size", accepted="an integer >= 1"
        )
    ingestor = ingestor or default_ingestor(stores)
    source = SourceFile(path, infer_format(path, format))
    if preset is not None:
        if preset != PRESET_NAME:
            raise InvalidInput(
                f"unknown preset {preset!r}", field="preset", accepted=", ".join(PRESETS)
            )
        if exclude:
            raise InvalidInput(
                "a preset leaves out its non-product rows itself; drop --exclude",
                field="exclude", accepted="either --preset or --exclude",
            )
        if mapping:
            raise InvalidInput(
                "a preset brings its own mapping; drop --map",
                field="mapping",
                accepted="either --preset or --map",
            )
        return import_online_retail(
            source,
            kind,
            stores,
            ingestor,
            tenant,
            batch_size=batch_size,
            progress=progress,
            error_report_path=error_report_path,
        )
    if kind not in KINDS:
        raise InvalidInput(
            f"unknown record kind {kind!r}",
            field="kind",
            accepted="users, items, events (all needs --preset)",
        )
    exclusions = Exclusions.parse(exclude, kind)
    columns = ColumnMapping(
        kind,
        dict(mapping or {}),
        dict(defaults or {}),
        Coercer(separator=separator, datetime_format=datetime_format),
        ignored=exclusions.columns,
    )
    header = source.read_header()
    if header:
        columns.bind(header)
        _check_sources(columns, header)
    report = ImportReport(kind=kind, path=str(path))
    started = time.perf_counter()
    with (
        ErrorLog(report, error_report_path) as errors,
        ImportProgress(
            f"import {kind}", unit=source.unit, total=source.total, enabled=progress
        ) as bar,
    ):
        _run(
            source,
            columns,
            sink_for(kind, stores, ingestor, tenant),
            report,
            errors,
            bar,
            batch_size,
            exclusions,
        )
    report.seconds = time.perf_counter() - started
    return report


def _check_sources(columns: ColumnMapping, header: list[str]) -> None:
    """A mapped column missing from the header is a mistake worth stopping for."""
    missing = sorted(
        {
            s
            for s in columns.mapping.values()
            if s not in header and s.split(".", 1)[0] not in header
        }
    )
    if missing:
        raise InvalidInput(
            f"mapped column(s) {', '.join(map(repr, missing))} are not in the file",
            field="mapping",
            accepted="columns of the file: " + ", ".join(header),
        )


def _run(
    source: SourceFile,
    columns: ColumnMapping,
    sink: Sink,
    report: ImportReport,
    errors: ErrorLog,
    bar: ImportProgress,
    batch_size: int,
    exclusions: Exclusions,
) -> None:
    raws: list[dict[str, Any]] = []
    rows: list[int] = []

    def flush() -> None:
        outcome = sink.write(raws, rows)
        report.stored += outcome.stored
        report.duplicates += outcome.duplicates
        for error in outcome.errors:
            errors.add(error)
        errors.commit()
        raws.clear()
        rows.clear()
        bar.update(source.position, report.rows, source.total)

    apply = columns.apply
    for row_no, record in source.rows():
        report.rows += 1
        if isinstance(record, BadRow):
            errors.add(RowError(row_no, None, "invalid_input", record.reason, record.accepted))
            continue
        if exclusions.rows and exclusions.excludes(record, columns):
            report.skipped += 1
            continue
        try:
            raws.append(apply(record))
        except CoercionError as exc:
            errors.add(RowError(row_no, exc.target, "invalid_input", exc.message, exc.accepted))
            continue
        rows.append(row_no)
        if len(raws) >= batch_size:
            flush()
    if raws:
        flush()
    bar.update(source.position, report.rows, source.total)
