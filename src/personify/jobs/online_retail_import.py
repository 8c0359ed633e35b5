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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from personify.data.online_retail import (
    CURRENCY,
    HEADER,
    NON_PRODUCT_CODES,
    RetailLine,
    categories_for,
    is_product_action,
)
from personify.domain.errors import InvalidInput
from personify.domain.events import Context, Event
from personify.domain.items import Item
from personify.domain.users import Profile, User
from personify.ingestion import EventIngestor
from personify.ingestion.validation import rejection_from_validation_error
from personify.jobs.import_report import ErrorLog, ImportProgress, ImportReport, RowError
from personify.jobs.record_sinks import EventSink, ImportStores, RecordSink, Sink
from personify.jobs.tabular_files import SourceFile

NO_CONTEXT = Context()
"""One shared empty context (frozen, so safe to share): validating an event that carries it
skips building a new ``Context`` per row, about a fifth of the validation time."""
PRESET_NAME = "online-retail"
PRESET_KINDS = ("all", "users", "items", "events")


@dataclass
class _ItemStats:
    descriptions: Counter[str] = field(default_factory=Counter)
    price: float | None = None
    price_time: datetime | None = None
    first_sale: datetime | None = None

    def add_sale(self, description: str, unit_price: float, timestamp: datetime) -> None:
        if description:
            self.descriptions[description] += 1
        if unit_price > 0 and (self.price_time is None or timestamp >= self.price_time):
            self.price, self.price_time = unit_price, timestamp
        if self.first_sale is None or timestamp < self.first_sale:
            self.first_sale = timestamp

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


class _Timestamps:
    """``InvoiceDate`` text -> aware UTC datetime, remembering the last one (lines of an invoice
    share it, so most rows skip the parse)."""

    def __init__(self) -> None:
        self._text: str | None = None
        self._value: datetime | None = None

    def __call__(self, text: str) -> datetime:
        if text != self._text:
            self._value = datetime.fromisoformat(text).replace(tzinfo=UTC)
            self._text = text
        assert self._value is not None
        return self._value


@dataclass
class _Aggregates:
    """Users (latest country) and items, accumulated while the events stream."""

    countries: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    items: dict[str, _ItemStats] = field(default_factory=dict)

    def users(self) -> list[User]:
        return [
            User(user_id=cid, profile=Profile(country=country or None))
            for cid, (_, country) in self.countries.items()
        ]

    def catalogue(self) -> list[Item]:
        return [stats.to_item(code) for code, stats in self.items.items()]


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
        "context": NO_CONTEXT,
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


def _number(text: str, column: str) -> float:
    try:
        return float(text) if text else 0.0
    except ValueError:
        raise _BadCell(column, f"{text!r} is not a number", "a number") from None


class _BadCell(ValueError):
    def __init__(self, column: str, reason: str, accepted: str) -> None:
        super().__init__(reason)
        self.column, self.reason, self.accepted = column, reason, accepted


def parse_cells(
    cells: list[str], line_no: int, timestamps: Callable[[str], datetime]
) -> RetailLine:
    """One CSV row (in :data:`HEADER` order) as a :class:`RetailLine`; ``_BadCell`` names the
    column that cannot be read."""
    try:
        timestamp = timestamps(cells[4])
    except ValueError:
        raise _BadCell(
            "InvoiceDate",
            f"{cells[4]!r} is not a date-time",
            "an ISO date-time such as 2010-12-01 08:26:00",
        ) from None
    return RetailLine(
        invoice=cells[0],
        line_no=line_no,
        stock_code=cells[1].strip(),
        description=cells[2].strip(),
        quantity=_number(cells[3], "Quantity"),
        timestamp=timestamp,
        unit_price=_number(cells[5], "UnitPrice"),
        customer_id=cells[6].strip() or None,
        country=cells[7].strip(),
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
    if source.format != "csv":
        raise InvalidInput(
            f"the {PRESET_NAME} preset reads CSV, not {source.format}",
            field="format",
            accepted="csv (optionally gzip-compressed)",
        )
    header = source.read_header()
    if tuple(header[: len(HEADER)]) != HEADER:
        raise InvalidInput(
            f"{source.path.name} does not start with the Online Retail columns",
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
        sink = EventSink(ingestor, tenant) if "events" in want else None
        seen = _stream(source, sink, report, errors, bar, batch_size)
        if "users" in want:
            users = RecordSink(User, stores.users.upsert, "user_id", tenant)
            report.extra_records["users"] = _write_all(users, seen.users(), batch_size)
        if "items" in want:
            items = RecordSink(Item, stores.catalog.upsert, "item_id", tenant)
            report.extra_records["items"] = _write_all(items, seen.catalogue(), batch_size)
        if sink is None:
            report.stored = sum(report.extra_records.values())
    report.seconds = time.perf_counter() - started
    return report


def _stream(
    source: SourceFile,
    sink: Sink | None,
    report: ImportReport,
    errors: ErrorLog,
    bar: ImportProgress,
    batch_size: int,
) -> _Aggregates:
    """One pass: events to ``sink`` in batches (when given), users and items aggregated."""
    per_invoice: Counter[str] = Counter()
    seen = _Aggregates()
    countries, items = seen.countries, seen.items
    timestamps = _Timestamps()
    received_at = datetime.now(UTC)
    events: list[Event] = []
    rows: list[int] = []

    def flush() -> None:
        assert sink is not None
        outcome = sink.write(events, rows)
        report.stored += outcome.stored
        report.duplicates += outcome.duplicates
        for error in outcome.errors:
            errors.add(error)
        errors.commit()
        events.clear()
        rows.clear()
        bar.update(source.position, report.rows)

    width = len(HEADER)
    for row_no, cells in source.csv_cells():
        report.rows += 1
        if len(cells) < width:
            errors.add(
                RowError(
                    row_no,
                    None,
                    "invalid_input",
                    f"row has {len(cells)} cells, expected {width}",
                    ",".join(HEADER),
                )
            )
            continue
        invoice = cells[0]
        per_invoice[invoice] += 1
        try:
            line = parse_cells(cells, per_invoice[invoice], timestamps)
        except _BadCell as bad:
            errors.add(RowError(row_no, bad.column, "invalid_input", bad.reason, bad.accepted))
            continue
        if not is_product_action(line):  # stock adjustments, postage, fees, manual lines
            report.skipped += 1
            continue
        if line.customer_id is not None:
            known = countries.get(line.customer_id)
            if known is None or line.timestamp >= known[0]:
                countries[line.customer_id] = (line.timestamp, line.country)
        stats = items.get(line.stock_code)
        if stats is None:
            stats = items[line.stock_code] = _ItemStats()
        if not line.cancelled:
            stats.add_sale(line.description, line.unit_price, line.timestamp)
        if sink is None:
            continue
        try:
            # validated here, so the ingestor takes a ready Event (no per-row size check:
            # every field of a retail event is bounded by the domain limits)
            events.append(Event.model_validate(event_record(line, received_at)))
        except ValidationError as exc:
            rejected = rejection_from_validation_error(0, exc, line.event_id)
            errors.add(
                RowError(
                    row_no,
                    rejected.field,
                    rejected.code,
                    rejected.message,
                    rejected.accepted,
                    line.event_id,
                )
            )
            continue
        rows.append(row_no)
        if len(events) >= batch_size:
            flush()
    if events:
        flush()
    bar.update(source.position, report.rows)
    return seen


def _write_all(sink: Sink, records: list[Any], batch_size: int) -> int:
    written = 0
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        written += sink.write(chunk, list(range(len(chunk)))).stored
    return written
