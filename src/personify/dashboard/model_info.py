"""What the dashboard shows about the served model: version, age, size, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from personify.runtime.engine import Engine
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


def served_model(engine: Engine | None, tenant: str) -> ServedModel | None:
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


def selection_rows(manifest: ModelManifest) -> dict[str, Any] | None:
    """The configuration choice recorded by ``personify train`` (``metrics["selection"]``):
    a summary and one row per trial (model, parameters, validation NDCG@20 / Recall@20, fit
    seconds, memory, chosen / best / pruned); None for a version trained without it."""
    record = manifest.metrics.get("selection")
    if not isinstance(record, dict):
        return None
    rows = []
    for trial in record.get("trials", []):
        ndcg, sub = trial.get("ndcg"), trial.get("subsample_ndcg")
        rows.append({
            "model": trial.get("model", ""),
            "params": ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in trial.get("params", {}).items()),
            "ndcg": f"{ndcg:.4f}" if ndcg is not None else (f"({sub:.4f})" if sub is not None
                                                            else "-"),
            "recall": f"{trial['recall']:.4f}" if trial.get("recall") is not None else "",
            "fit_seconds": trial.get("fit_seconds", 0.0),
            "memory_mb": trial.get("memory_mb", 0.0),
            "note": trial.get("note") or ("" if trial.get("status") == "complete"
                                          else trial.get("status", "")),
        })
    return {
        "protocol": record.get("protocol", ""),
        "reason": record.get("reason", ""),
        "chosen": f"{record.get('user_model')} {record.get('user_params')}",
        "neighbours": f"{record.get('neighbour_model')} {record.get('neighbour_params')}",
        "seconds": record.get("seconds", 0.0),
        "reused_from": record.get("reused_from") if not record.get("retune_reason") else None,
        "rows": rows,
    }
