"""Bulk export of users, items or events to CSV, JSON Lines or Parquet, streamed page by page.

The files are exactly what :func:`personify.jobs.bulk_import.import_file` reads without a
mapping: JSON Lines holds the nested records; CSV and Parquet hold one column per field path
(``profile.country``, ``context.device``), lists as JSON arrays (CSV) or list columns (Parquet),
and free properties as a JSON object column. Example::

    export_table("events", "events.parquet", stores, "default")

Events can also be written as a Parquet *dataset* partitioned by day (``date=YYYY-MM-DD/``
folders, UTC), the layout ``personify train --engine spark`` reads (``export_events_by_date``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from personify.domain.errors import InvalidInput
from personify.domain.tenants import validate_tenant_id
from personify.jobs.column_mapping import FIELD_TYPES, KINDS, FieldType
from personify.jobs.import_report import ImportProgress
from personify.jobs.record_sinks import ImportStores
from personify.jobs.tabular_files import Format, RecordWriter, infer_format, require_pyarrow

PAGE_SIZE = 2_000


@dataclass
class ExportReport:
    """How many records went to which file, and how long it took."""

    kind: str
    path: str
    format: str
    rows: int
    seconds: float


def flat_columns(kind: str) -> dict[str, FieldType]:
    """The columns of a flat (CSV / Parquet) export: leaf field paths; nested records are spread
    out, free-property mappings stay one JSON column."""
    table = FIELD_TYPES[kind]
    out: dict[str, FieldType] = {}
    for path, kind_ in table.items():
        if path.endswith(".*"):
            continue
        if kind_ is FieldType.OBJECT and f"{path}.*" not in table:
            continue  # a nested record: its leaves are columns of their own
        out[path] = kind_
    return out


def _arrow_schema(columns: dict[str, FieldType]) -> Any:
    require_pyarrow()
    import pyarrow as pa

    types = {
        FieldType.STR: pa.string(),
        FieldType.INTEGER: pa.int64(),
        FieldType.NUMBER: pa.float64(),
        FieldType.BOOL: pa.bool_(),
        FieldType.DATETIME: pa.timestamp("us", tz="UTC"),
        FieldType.LIST: pa.list_(pa.string()),
        FieldType.OBJECT: pa.string(),
    }
    return pa.schema([(name, types[kind]) for name, kind in columns.items()])


def _flatten(record: dict[str, Any], columns: dict[str, FieldType]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, kind in columns.items():
        value: Any = record
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if kind is FieldType.OBJECT:
            value = orjson.dumps(value).decode() if value else None
        out[path] = value
    return out


def _records(kind: str, stores: ImportStores, tenant: str) -> Iterator[BaseModel]:
    if kind == "events":
        yield from stores.events.scan(tenant, batch_size=PAGE_SIZE)
    elif kind == "items":
        yield from stores.catalog.scan(tenant, batch_size=PAGE_SIZE)
    else:
        offset = 0
        while True:
            page = stores.users.list(tenant, limit=PAGE_SIZE, offset=offset)
            yield from page
            if len(page) < PAGE_SIZE:
                return
            offset += len(page)


def _total(kind: str, stores: ImportStores, tenant: str) -> int:
    if kind == "events":
        return stores.events.count(tenant)
    if kind == "items":
        return stores.catalog.count(tenant)
    return stores.users.count(tenant)


def export_table(
    kind: str,
    path: str | Path,
    stores: ImportStores,
    tenant: str,
    format: str | None = None,
    *,
    progress: bool = False,
) -> ExportReport:
    """Write every ``kind`` record of ``tenant`` to ``path`` (format from the name if not given)."""
    validate_tenant_id(tenant)
    if kind not in KINDS:
        raise InvalidInput(
            f"unknown record kind {kind!r}", field="kind", accepted="users, items, events"
        )
    fmt: Format = infer_format(path, format)
    columns = flat_columns(kind)
    schema = _arrow_schema(columns) if fmt == "parquet" else None
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    with (
        RecordWriter(path, fmt, list(columns), schema) as writer,
        ImportProgress(
            f"export {kind}", unit="rows", total=_total(kind, stores, tenant), enabled=progress
        ) as bar,
    ):
        for record in _records(kind, stores, tenant):
            if fmt == "jsonl":
                batch.append(record.model_dump(mode="json", exclude_none=True))
            else:
                batch.append(_flatten(record.model_dump(mode="python"), columns))
            if len(batch) >= PAGE_SIZE:
                writer.write(batch)
                batch.clear()
                bar.update(writer.rows, writer.rows)
        writer.write(batch)
        bar.update(writer.rows, writer.rows)
    return ExportReport(kind, str(path), fmt, writer.rows, time.perf_counter() - started)


OPEN_PARTITIONS = 32
"""At most this many day files open at once while exporting by date (a day whose writer was
closed gets a new ``part-NNNNN`` file when its events come again)."""


def export_events_by_date(
    path: str | Path,
    stores: ImportStores,
    tenant: str,
    *,
    progress: bool = False,
) -> ExportReport:
    """Every event of ``tenant`` as a Parquet dataset under the folder ``path``, one
    ``date=YYYY-MM-DD`` folder per UTC day of the event timestamp (Hive partitioning: Spark,
    pyarrow and most engines read the day as a column and prune by it). The files hold the same
    columns as ``export_table(..., format="parquet")``."""
    validate_tenant_id(tenant)
    root = Path(path)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise InvalidInput(
            f"{str(root)!r} exists and is not an empty folder", field="path",
            accepted="a new or empty folder for the partitioned dataset",
        )
    columns = flat_columns("events")
    schema = _arrow_schema(columns)
    started = time.perf_counter()
    writers: OrderedDict[str, RecordWriter] = OrderedDict()
    parts: dict[str, int] = {}
    pending: dict[str, list[dict[str, Any]]] = {}
    rows = 0

    def flush(day: str) -> None:
        batch = pending.pop(day, [])
        if not batch:
            return
        writer = writers.get(day)
        if writer is None:
            if len(writers) >= OPEN_PARTITIONS:
                _, oldest = writers.popitem(last=False)
                oldest.__exit__(None, None, None)
            number = parts.get(day, 0)
            parts[day] = number + 1
            writer = RecordWriter(root / f"date={day}" / f"part-{number:05d}.parquet",
                                  "parquet", list(columns), schema).__enter__()
            writers[day] = writer
        else:
            writers.move_to_end(day)
        writer.write(batch)

    try:
        with ImportProgress("export events by date", unit="rows",
                            total=_total("events", stores, tenant), enabled=progress) as bar:
            for record in stores.events.scan(tenant, batch_size=PAGE_SIZE):
                flat = _flatten(record.model_dump(mode="python"), columns)
                day = record.timestamp.astimezone(UTC).date().isoformat()
                pending.setdefault(day, []).append(flat)
                rows += 1
                if len(pending[day]) >= PAGE_SIZE:
                    flush(day)
                if rows % PAGE_SIZE == 0:
                    bar.update(rows, rows)
            for day in list(pending):
                flush(day)
            bar.update(rows, rows)
    finally:
        for writer in writers.values():
            writer.__exit__(None, None, None)
    root.mkdir(parents=True, exist_ok=True)
    return ExportReport("events", str(root), "parquet (by date)", rows,
                        time.perf_counter() - started)
