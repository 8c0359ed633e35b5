"""``results/web.json`` is written by several web benchmarks (pages, session quality, the
snippet): each merges its keys into the ``metrics`` object already there (read-modify-write),
never replacing another's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _report import RESULTS_DIR, hardware


def merge_web_results(metrics: dict[str, Any], *, command: str) -> Path:
    path = RESULTS_DIR / "web.json"
    body: dict[str, Any] = {}
    if path.exists():
        body = json.loads(path.read_text(encoding="utf-8"))
    merged = {**body.get("metrics", {}), **metrics}
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
