"""What a bulk import reports: counts, per-row errors (also written to an error file as they
happen), and a Rich progress bar over bytes or rows."""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

KEPT_ERRORS = 100
"""How many row errors an :class:`ImportReport` keeps in memory (the error file has them all)."""
ERROR_COLUMNS = ("row", "field", "code", "reason", "accepted", "id")


@dataclass(frozen=True)
class RowError:
    """One rejected source row: its number (CSV: the header is row 1), the field, why, and what
    would be accepted. ``id`` is the record's id when it had one."""

    row: int
    field: str | None
    code: str
    reason: str
    accepted: str | None = None
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ImportReport:
    """The outcome of one import. ``stored`` counts new events or upserted users / items;
    ``duplicates`` counts events already stored (or repeated ids superseded within a batch);
    ``skipped`` counts rows a preset ignores on purpose (e.g. stock adjustments);
    ``extra_records`` counts other kinds a preset wrote (users and items of a retail file)."""

    kind: str
    path: str
    rows: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    seconds: float = 0.0
    extra_records: dict[str, int] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    error_report: str | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["errors"] = [e.to_dict() for e in self.errors]
        body["rows_per_second"] = round(self.rows_per_second, 1)
        return body


class ErrorLog:
    """Collects row errors: counts them on the report, keeps the first few, and streams every
    one to ``path`` (CSV when the name ends in .csv / .csv.gz, else JSON Lines)."""

    def __init__(self, report: ImportReport, path: str | Path | None = None) -> None:
        self.report = report
        self.path = Path(path) if path is not None else None
        self._fh: IO[str] | None = None
        self._csv: Any = None
        self._pending: list[RowError] = []

    def __enter__(self) -> ErrorLog:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            raw: IO[str]
            if self.path.suffix.lower() == ".gz":
                raw = io.TextIOWrapper(gzip.open(self.path, "wb"), encoding="utf-8", newline="")
            else:
                raw = open(self.path, "w", encoding="utf-8", newline="")
            self._fh = raw
            if ".csv" in [s.lower() for s in self.path.suffixes]:
                self._csv = csv.writer(raw, lineterminator="\n")
                self._csv.writerow(ERROR_COLUMNS)
            self.report.error_report = str(self.path)
        return self

    def add(self, error: RowError) -> None:
        """Count an error; it is written at the next :meth:`commit` (in row order)."""
        self.report.rejected += 1
        self._pending.append(error)

    def commit(self) -> None:
        """Write the errors added since the last commit, sorted by row (a batch reports its
        unreadable rows at once and its invalid ones after validation)."""
        self._pending.sort(key=lambda e: e.row)
        for error in self._pending:
            if len(self.report.errors) < KEPT_ERRORS:
                self.report.errors.append(error)
            if self._csv is not None:
                self._csv.writerow(["" if v is None else v for v in asdict(error).values()])
            elif self._fh is not None:
                self._fh.write(orjson.dumps(error.to_dict()).decode() + "\n")
        self._pending.clear()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.commit()
        if self._fh is not None:
            self._fh.close()


class ImportProgress:
    """A Rich progress bar on stderr over ``total`` bytes (or rows), updated once per batch;
    does nothing when ``enabled`` is false."""

    def __init__(
        self, description: str, *, unit: str, total: int | None, enabled: bool = True
    ) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if not enabled:
            return
        counter = (
            [DownloadColumn(), TransferSpeedColumn()] if unit == "bytes" else [MofNCompleteColumn()]
        )
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            *counter,
            TextColumn("{task.fields[rows]:,} rows"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task(description, total=total, rows=0)

    def __enter__(self) -> ImportProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def update(self, position: int, rows: int, total: int | None = None) -> None:
        if self._progress is not None and self._task is not None:
            if total is not None:
                self._progress.update(self._task, total=total)
            self._progress.update(self._task, completed=position, rows=rows)

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
