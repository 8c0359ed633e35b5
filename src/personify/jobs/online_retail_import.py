"""The ``online-retail`` import preset: the raw UCI Online Retail CSV (InvoiceNo, StockCode,
Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country) to users, items and events
in ONE streaming pass.

Events follow :mod:`personify.data.online_retail` exactly (same ids ``<InvoiceNo>-<n>``, same
purchase / return mapping, anonymous ``invoice:<no>`` visitors, stock adjustments skipped), so a
file imported here and the same file read by the data layer agree. Users (latest country) and
items (most frequent description, latest positive price, keyword categories) are aggregated
while the events stream and upserted at the end; every kind is idempotent on re-run.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from personify.data.online_retail import (
    CURRENCY,
    HEADER,
    NON_PRODUCT_CODES,
    RetailLine,
    categories_for,
    is_customer_action,
)
from personify.domain.errors import InvalidInput
from personify.domain.items import Item
from personify.domain.users import Profile, User
from personify.ingestion import EventIngestor
from personify.jobs.import_report import ErrorLog, ImportProgress, ImportReport, RowError
from personify.jobs.record_sinks import EventSink, ImportStores, RecordSink, Sink
from personify.jobs.tabular_files import BadRow, SourceFile

PRESET_NAME = "online-retail"
PRESET_KINDS = ("all", "users", "items", "events")


@dataclass
class _ItemStats:
    descriptions: Counter[str] = field(default_factory=Counter)
    price: float | None = None
    price_time: datetime | None = None
    first_sale: datetime | None = None

    def add(self, line: RetailLine) -> None:
        if line.cancelled:
            return
        if line.description:
            self.descriptions[line.description] += 1
        if line.unit_price > 0 and (self.price_time is None or line.timestamp >= self.price_time):
            self.price, self.price_time = line.unit_price, line.timestamp
        if self.first_sale is None or line.timestamp < self.first_sale:
            self.first_sale = line.timestamp

    def to_item(self, code: str) -> Item:
        title = self.descriptions.most_common(1)[0][0] if self.descriptions else code
        service = code in NON_PRODUCT_CODES
        return Item(
            item_id=code,
            type="service" if service else "product",
            title=title,
            categories=[] if service else categories_for(title),
            price=self.price,
            currency=CURRENCY,
            created_at=self.first_sale,
        )


_NUMBER_FIELDS = (("Quantity", "quantity"), ("UnitPrice", "unit_price"))


def event_record(line: RetailLine, received_at: datetime) -> dict[str, Any]:
    """The raw event of one customer-action line: the same record as
    :func:`personify.data.online_retail.line_to_event` (a test holds them equal), as a mapping
    with ``received_at`` set, so the ingestor validates it once and never copies it."""
    record: dict[str, Any] = {
        "event_id": line.event_id,
        "type": "return" if line.cancelled else "purchase",
        "item_id": line.stock_code,
        "quantity": abs(line.quantity),
        "currency": CURRENCY,
        "order_id": line.invoice,
        "timestamp": line.timestamp,
        "received_at": received_at,
    }
    if line.customer_id:
        record["user_id"] = line.customer_id
    else:
        record["anonymous_id"] = f"invoice:{line.invoice}"
    if line.unit_price >= 0:
        record["price"] = line.unit_price
    if line.country:
        record["properties"] = {"country": line.country}
    return record


def parse_line(record: dict[str, Any], line_no: int) -> RetailLine | RowError:
    """One CSV record as a :class:`RetailLine`, or the error naming the bad column."""
    numbers: dict[str, float] = {}
    for column, name in _NUMBER_FIELDS:
        text = record[column]
        try:
            numbers[name] = float(text) if text else 0.0
        except ValueError:
            return RowError(0, column, "invalid_input", f"{text!r} is not a number", "a number")
    try:
        timestamp = datetime.fromisoformat(record["InvoiceDate"]).replace(tzinfo=UTC)
    except ValueError:
        return RowError(
            0,
            "InvoiceDate",
            "invalid_input",
            f"{record['InvoiceDate']!r} is not a date-time",
            "an ISO date-time such as 2010-12-01 08:26:00",
        )
    return RetailLine(
        invoice=record["InvoiceNo"],
        line_no=line_no,
        stock_code=record["StockCode"].strip(),
        description=record["Description"].strip(),
        quantity=numbers["quantity"],
        timestamp=timestamp,
        unit_price=numbers["unit_price"],
        customer_id=record["CustomerID"].strip() or None,
        country=record["Country"].strip(),
    )


def import_online_retail(
    source: SourceFile,
    kind: str,
    stores: ImportStores,
    ingestor: EventIngestor,
    tenant: str,
    *,
    batch_size: int,
    progress: bool,
    error_report_path: str | Path | None,
) -> ImportReport:
    """Import a UCI Online Retail CSV: ``kind`` ``all`` writes users, items and events."""
    if kind not in PRESET_KINDS:
        raise InvalidInput(
            f"the {PRESET_NAME} preset cannot import {kind!r}",
            field="kind",
            accepted=", ".join(PRESET_KINDS),
        )
    header = source.read_header()
    missing = [c for c in HEADER if c not in header]
    if missing:
        raise InvalidInput(
            f"{source.path.name} lacks the Online Retail column(s) {', '.join(missing)}",
            field="file",
            accepted="a CSV with header " + ",".join(HEADER),
        )
    want = set(PRESET_KINDS[1:]) if kind == "all" else {kind}
    report = ImportReport(kind=kind, path=str(source.path))
    started = time.perf_counter()
    with (
        ErrorLog(report, error_report_path) as errors,
        ImportProgress(
            f"import {PRESET_NAME}", unit=source.unit, total=source.total, enabled=progress
        ) as bar,
    ):
        users, items = _stream(
            source, want, EventSink(ingestor, tenant), report, errors, bar, batch_size
        )
        if "users" in want:
            sink = RecordSink(User, stores.users.upsert, "user_id", tenant)
            report.extra_records["users"] = _write_all(sink, users, batch_size)
        if "items" in want:
            sink = RecordSink(Item, stores.catalog.upsert, "item_id", tenant)
            report.extra_records["items"] = _write_all(sink, items, batch_size)
        if "events" not in want:
            report.stored = sum(report.extra_records.values())
    report.seconds = time.perf_counter() - started
    return report


def _stream(
    source: SourceFile,
    want: set[str],
    sink: Sink,
    report: ImportReport,
    errors: ErrorLog,
    bar: ImportProgress,
    batch_size: int,
) -> tuple[list[User], list[Item]]:
    per_invoice: Counter[str] = Counter()
    countries: dict[str, tuple[datetime, str]] = {}
    stats: dict[str, _ItemStats] = {}
    events: list[dict[str, Any]] = []
    received_at = datetime.now(UTC)
    rows: list[int] = []
    with_events = "events" in want

    def flush() -> None:
        outcome = sink.write(events, rows)
        report.stored += outcome.stored
        report.duplicates += outcome.duplicates
        for error in outcome.errors:
            errors.add(error)
        events.clear()
        rows.clear()
        bar.update(source.position, report.rows)

    for row_no, record in source.rows():
        report.rows += 1
        if isinstance(record, BadRow):
            errors.add(RowError(row_no, None, "invalid_input", record.reason, record.accepted))
            continue
        invoice = record["InvoiceNo"]
        per_invoice[invoice] += 1
        line = parse_line(record, per_invoice[invoice])
        if isinstance(line, RowError):
            errors.add(RowError(row_no, line.field, line.code, line.reason, line.accepted))
            continue
        if not is_customer_action(line):
            report.skipped += 1
            continue
        if line.customer_id is not None:
            seen = countries.get(line.customer_id)
            if seen is None or line.timestamp >= seen[0]:
                countries[line.customer_id] = (line.timestamp, line.country)
        item = stats.get(line.stock_code)
        if item is None:
            item = stats[line.stock_code] = _ItemStats()
        item.add(line)
        if not with_events:
            continue
        events.append(event_record(line, received_at))
        rows.append(row_no)
        if len(events) >= batch_size:
            flush()
    if events:
        flush()
    bar.update(source.position, report.rows)
    users = [
        User(user_id=cid, profile=Profile(country=country or None))
        for cid, (_, country) in countries.items()
    ]
    return users, [s.to_item(code) for code, s in stats.items()]


def _write_all(sink: Sink, records: list[Any], batch_size: int) -> int:
    written = 0
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        written += sink.write(chunk, list(range(len(chunk)))).stored
    return written
