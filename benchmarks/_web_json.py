"""``results/web.json`` is written by several web benchmarks (pages, session quality, the
snippet): each merges its keys into the ``metrics`` object already there (read-modify-write),
never replacing another's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _report import RESULTS_DIR, hardware


def _finite(value: Any) -> Any:
    """JSON has no infinity (a latency the server never answered within): null instead."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def merge_web_results(metrics: dict[str, Any], *, command: str) -> Path:
    path = RESULTS_DIR / "web.json"
    metrics = _finite(metrics)
    body: dict[str, Any] = {}
    if path.exists():
        body = json.loads(path.read_text(encoding="utf-8"))
    merged = _finite({**body.get("metrics", {}), **metrics})
    commands = dict(body.get("commands", {}))
    for key in metrics:
        commands[key] = command
    body.update(
        name="web",
        metrics=merged,
        hardware=hardware(),
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        command=command,
        commands=commands,
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2, default=str) + "\n", encoding="utf-8")
    return path
