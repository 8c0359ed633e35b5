"""What the dashboard shows about the served model: version, age, size, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from personify.dashboard.ports import EngineView
from personify.storage.model_files import ModelManifest


@dataclass
class ServedModel:
    version: str | None
    created_at: datetime | None = None
    model_name: str = ""
    items: int = 0
    events_used: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def served_model(engine: EngineView | None, tenant: str) -> ServedModel | None:
    """The model the engine serves for ``tenant`` (None without an engine; version None before
    the first training)."""
    if engine is None:
        return None
    bundle = engine.bundles.get(tenant)
    if bundle is None:
        return ServedModel(version=None)
    manifest = next((m for m in engine.models.list(tenant) if m.version == bundle.version), None)
    return ServedModel(
        version=bundle.version,
        created_at=parse_time(manifest.created_at) if manifest else None,
        model_name=bundle.model_name,
        items=len(bundle.items.ids),
        events_used=manifest.events_used if manifest else 0,
        metrics=dict(manifest.metrics) if manifest else dict(bundle.metrics),
    )


def scalar_metrics(manifest: ModelManifest) -> dict[str, float | int | str]:
    """The manifest's metrics that fit in a table cell (nested ones are flattened one level)."""
    out: dict[str, float | int | str] = {}
    for key, value in manifest.metrics.items():
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            out[key] = value
        elif isinstance(value, dict):
            for sub, inner in value.items():
                if isinstance(inner, int | float) and not isinstance(inner, bool):
                    out[f"{key}.{sub}"] = inner
    return out
