"""Writes a benchmark results file: ``benchmarks/results/<name>.json`` with metrics, hardware,
date and the command that produced it."""

from __future__ import annotations

import fcntl
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="utf-8") as fh:
            info["memory_kb"] = int(fh.readline().split()[1])
    except OSError:
        pass
    return info


def write_results(name: str, metrics: dict[str, Any], **extra: Any) -> Path:
    """Write ``results/<name>.json`` and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    body = {
        "name": name,
        "metrics": metrics,
        "hardware": hardware(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python " + " ".join(sys.argv),
        **extra,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(
        json.dumps(body, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8"
    )
    return path


def merge_results(name: str, metrics: dict[str, Any], commands: dict[str, str],
                  **sections: dict[str, Any]) -> Path:
    """Merge ``metrics`` (and each named section's entries) into ``results/<name>.json`` under a
    file lock, for results that several scripts write parts of: every other key stays;
    ``commands`` (part -> the command that measured it) are joined into ``command``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    with open(RESULTS_DIR / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        body: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        body.setdefault("name", name)
        body.setdefault("metrics", {}).update(metrics)
        for section, entries in sections.items():
            body.setdefault(section, {}).update(entries)
        known = body.setdefault("commands", {})
        known.update(commands)
        body["command"] = " ; ".join(known.values())
        body["hardware"] = hardware()
        body["date"] = datetime.now(UTC).isoformat(timespec="seconds")
        path.write_text(json.dumps(body, indent=2, default=str) + "\n", encoding="utf-8")
    return path
