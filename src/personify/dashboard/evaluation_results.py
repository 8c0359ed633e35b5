"""Offline evaluation results for the Models page, read from ``benchmarks/results/*.json``.

A results file is ``{"name", "metrics": {...}, "date", ...}``; every nested mapping whose values
are mappings of numbers (model -> metric -> value) becomes one comparison table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 5 * 1024 * 1024


@dataclass
class ResultTable:
    """Rows (models or settings) by columns (metrics) of one benchmark section."""

    title: str
    columns: list[str]
    rows: list[tuple[str, list[float | None]]] = field(default_factory=list)


@dataclass
class ResultFile:
    name: str
    date: str
    tables: list[ResultTable]


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _tables(title: str, node: Any, out: list[ResultTable], depth: int = 0) -> None:
    if not isinstance(node, dict) or depth > 4:
        return
    rows = {k: v for k, v in node.items() if isinstance(v, dict)}
    numeric_rows = {
        k: {m: x for m, x in v.items() if _numeric(x)} for k, v in rows.items()
    }
    numeric_rows = {k: v for k, v in numeric_rows.items() if len(v) >= 2}
    if len(numeric_rows) >= 2:
        columns: list[str] = []
        for metrics in numeric_rows.values():
            columns.extend(m for m in metrics if m not in columns)
        table = ResultTable(title, columns[:12])
        for name, metrics in numeric_rows.items():
            table.rows.append((name, [metrics.get(c) for c in table.columns]))
        out.append(table)
        return
    for key, child in rows.items():
        _tables(f"{title} / {key}" if title else key, child, out, depth + 1)


def read_results(folder: Path, *, limit: int = 20) -> list[ResultFile]:
    """Every readable results file in ``folder`` with at least one comparison table."""
    if not folder.is_dir():
        return []
    out: list[ResultFile] = []
    for path in sorted(folder.glob("*.json"))[:limit]:
        if path.stat().st_size > MAX_FILE_BYTES:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        tables: list[ResultTable] = []
        _tables("", data.get("metrics", {}), tables)
        if tables:
            out.append(ResultFile(str(data.get("name", path.stem)), str(data.get("date", "")),
                                  tables))
    return out
