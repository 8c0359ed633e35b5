"""Streaming readers and writers for CSV, JSON Lines and Parquet files (gzip for the text ones).

Readers yield one record at a time with its row number, never the whole file: CSV through the
``csv`` module (the header is row 1, so the first record is row 2), JSON Lines line by line,
Parquet batch by batch through ``pyarrow`` (an optional extra, ``personify[parquet]``).
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from personify.domain.errors import InvalidInput, Unavailable

Format = Literal["csv", "jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl", "parquet")
_SUFFIXES: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
csv.field_size_limit(16 * 1024 * 1024)


def infer_format(path: str | Path, explicit: str | None = None) -> Format:
    """The format named explicitly, or the one the file name ends with (``.csv.gz`` -> csv)."""
    if explicit is not None:
        if explicit not in FORMATS:
            raise InvalidInput(
                f"unknown file format {explicit!r}", field="format", accepted=", ".join(FORMATS)
            )
        return explicit
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    raise InvalidInput(
        f"cannot tell the format of {Path(path).name!r} from its name",
        field="format",
        accepted="a name ending in .csv, .csv.gz, .jsonl, .jsonl.gz or .parquet, or --format",
    )


def require_pyarrow() -> Any:
    """``pyarrow.parquet``, or Unavailable naming the extra to install."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise Unavailable(
            "Parquet needs pyarrow, which is not installed",
            field="format",
            accepted="pip install 'personify[parquet]', or use CSV / JSON Lines",
        ) from exc
    return pq


@dataclass(frozen=True)
class BadRow:
    """A source row that could not be read at all (malformed JSON, wrong number of cells)."""

    reason: str
    accepted: str


SourceRow = tuple[int, dict[str, Any] | BadRow]
"""(row number, record or the reason it could not be read). CSV rows are numbered as a
spreadsheet shows them (the header is row 1); JSON Lines by line; Parquet from 1."""


class CountingReader(io.RawIOBase):
    """A binary file that counts the bytes read from disk (compressed bytes for gzip), for a
    progress bar that knows its total."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class SourceFile:
    """One input file, opened for streaming; ``position`` / ``total`` drive the progress bar
    (bytes for CSV and JSON Lines, rows for Parquet)."""

    def __init__(self, path: str | Path, fmt: Format, *, parquet_batch: int = 10_000) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InvalidInput(
                f"file {str(self.path)!r} does not exist",
                field="file",
                accepted="the path of a readable file",
            )
        self.format = fmt
        self.parquet_batch = parquet_batch
        self.unit: Literal["bytes", "rows"] = "rows" if fmt == "parquet" else "bytes"
        self.total = self.path.stat().st_size if self.unit == "bytes" else None
        self._counter: CountingReader | None = None
        self._rows_done = 0
        self.columns: list[str] | None = None

    @property
    def position(self) -> int:
        if self.unit == "rows":
            return self._rows_done
        return self._counter.bytes_read if self._counter is not None else 0

    def _text(self) -> io.TextIOWrapper:
        self._counter = CountingReader(open(self.path, "rb"))  # noqa: SIM115 - closed below
        binary: IO[bytes] = io.BufferedReader(self._counter, buffer_size=1 << 20)
        if self.path.suffix.lower() == ".gz":
            binary = gzip.GzipFile(fileobj=binary, mode="rb")  # type: ignore[assignment]
        return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")

    def rows(self) -> Iterator[SourceRow]:
        """Every record in file order with its row number."""
        if self.format == "csv":
            yield from self._csv_rows()
        elif self.format == "jsonl":
            yield from self._jsonl_rows()
        else:
            yield from self._parquet_rows()

    def read_header(self) -> list[str]:
        """The column names (CSV header, Parquet schema); JSON Lines has none (empty list)."""
        if self.format == "csv":
            with self._text() as fh:
                delimiter = "\t" if ".tsv" in [s.lower() for s in self.path.suffixes] else ","
                header = next(csv.reader(fh, delimiter=delimiter), None)
            if not header:
                raise InvalidInput(
                    f"{self.path.name} is empty",
                    field="file",
                    accepted="a CSV file whose first row names the columns",
                )
            return _check_header(header)
        if self.format == "parquet":
            pq = require_pyarrow()
            return list(pq.ParquetFile(self.path).schema_arrow.names)
        return []

    def csv_cells(self) -> Iterator[tuple[int, list[str]]]:
        """CSV data rows as lists of cells with their row numbers (the header, row 1, is
        checked and skipped; blank lines are dropped). The fast path for presets."""
        delimiter = "\t" if ".tsv" in [s.lower() for s in self.path.suffixes] else ","
        with self._text() as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            self.columns = _check_header(next(reader, []))
            try:
                for row_no, values in enumerate(reader, start=2):
                    if values and values != [""]:
                        yield row_no, values
            except csv.Error as exc:
                raise InvalidInput(
                    f"{self.path.name}: malformed CSV near line {reader.line_num}: {exc}",
                    field="file",
                    accepted="RFC 4180 CSV",
                ) from exc

    def _csv_rows(self) -> Iterator[SourceRow]:
        cells = self.csv_cells()
        first = next(cells, None)
        header = self.columns or []
        width = len(header)
        for row_no, values in () if first is None else itertools.chain([first], cells):
            if len(values) == width:
                yield row_no, dict(zip(header, values, strict=True))
            else:
                yield (
                    row_no,
                    BadRow(
                        f"row has {len(values)} cells, the header has {width}",
                        f"{width} comma-separated cells (quote cells holding commas)",
                    ),
                )

    def _jsonl_rows(self) -> Iterator[SourceRow]:
        with self._text() as fh:
            for row_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    yield row_no, BadRow(f"malformed JSON: {exc}", "one JSON object per line")
                    continue
                if isinstance(record, dict):
                    yield row_no, record
                else:
                    yield (
                        row_no,
                        BadRow("the line is not a JSON object", "one JSON object per line"),
                    )

    def _parquet_rows(self) -> Iterator[SourceRow]:
        pq = require_pyarrow()
        parquet = pq.ParquetFile(self.path)
        self.total = parquet.metadata.num_rows
        row_no = 0
        for batch in parquet.iter_batches(batch_size=self.parquet_batch):
            for record in batch.to_pylist():
                row_no += 1
                yield row_no, record
            self._rows_done = row_no


def _check_header(header: Sequence[str]) -> list[str]:
    names = [h.strip() for h in header]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(
            f"duplicate column names in the header: {', '.join(duplicates)}",
            field="file",
            accepted="unique column names",
        )
    return names


class RecordWriter:
    """Writes flat records (CSV, Parquet) or nested ones (JSON Lines) to a file, gzip when the
    name ends in ``.gz``. Use as a context manager; ``write`` takes a batch."""

    def __init__(
        self, path: str | Path, fmt: Format, columns: Sequence[str], arrow_schema: Any = None
    ) -> None:
        self.path = Path(path)
        self.format = fmt
        self.columns = list(columns)
        self.arrow_schema = arrow_schema
        self._fh: IO[str] | None = None
        self._csv: Any = None
        self._parquet: Any = None
        self.rows = 0

    def __enter__(self) -> RecordWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.format == "parquet":
            pq = require_pyarrow()
            self._parquet = pq.ParquetWriter(self.path, self.arrow_schema, compression="zstd")
            return self
        if self.path.suffix.lower() == ".gz":
            self._fh = io.TextIOWrapper(gzip.open(self.path, "wb"), encoding="utf-8", newline="")
        else:
            self._fh = open(self.path, "w", encoding="utf-8", newline="")
        if self.format == "csv":
            self._csv = csv.writer(self._fh, lineterminator="\n")
            self._csv.writerow(self.columns)
        return self

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        if self.format == "parquet":
            import pyarrow as pa

            columns = {c: [r.get(c) for r in records] for c in self.columns}
            self._parquet.write_table(pa.Table.from_pydict(columns, schema=self.arrow_schema))
        elif self.format == "csv":
            self._csv.writerows([[_cell(r.get(c)) for c in self.columns] for r in records])
        else:
            assert self._fh is not None
            self._fh.write("".join(orjson.dumps(r).decode() + "\n" for r in records))
        self.rows += len(records)

    def __exit__(self, *exc: object) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._fh is not None:
            self._fh.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
