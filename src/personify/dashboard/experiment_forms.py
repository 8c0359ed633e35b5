"""The experiment creation form as a definition for :func:`create_experiment`, and the result
rows the Experiments page shows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from personify.domain.errors import InvalidInput
from personify.experiments.analysis import ExperimentResult

METRIC_KINDS = {
    "conversion": "proportion",
    "ctr": "ratio",
    "revenue": "mean",
    "orders": "mean",
    "clicks": "mean",
}
"""The built-in metrics (``personify.experiments.exposure``) and their kinds."""


def _share(value: str, field: str, default: float) -> float:
    if not value.strip():
        return default
    try:
        return float(value.replace(",", ".")) / 100.0
    except ValueError:
        raise InvalidInput(f"{field} must be a percentage", field=field,
                           accepted="a number such as 50") from None


def definition_from_form(form: dict[str, str], guardrails: list[str]) -> dict[str, Any]:
    """An experiment definition from the creation form's fields."""
    names = [v.strip() for v in form.get("variants", "").split(",") if v.strip()]
    primary = form.get("primary_metric", "conversion")
    if primary not in METRIC_KINDS:
        raise InvalidInput(f"unknown metric {primary!r}", field="primary_metric",
                           accepted=", ".join(METRIC_KINDS))
    size = form.get("planned_sample_size", "").strip()
    definition: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "hypothesis": form.get("hypothesis", "").strip(),
        "variants": [{"name": n} for n in names],
        "traffic": _share(form.get("traffic", ""), "traffic", 1.0),
        "holdout": _share(form.get("holdout", ""), "holdout", 0.0),
        "layer": form.get("layer", "").strip() or "default",
        "primary_metric": {"name": primary, "kind": METRIC_KINDS[primary]},
        "guardrail_metrics": [
            {"name": g, "kind": METRIC_KINDS[g]}
            for g in guardrails
            if g in METRIC_KINDS and g != primary
        ],
        "sequential": form.get("sequential") == "on",
    }
    if size:
        if not size.isdigit():
            raise InvalidInput("planned sample size must be a whole number",
                               field="planned_sample_size", accepted="a positive integer")
        definition["planned_sample_size"] = int(size)
    return definition


@dataclass
class ResultRow:
    metric: str
    variant: str
    control_value: float
    variant_value: float
    lift: float | None
    lift_low: float | None
    lift_high: float | None
    p_value: float
    significant: bool
    method: str


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def result_rows(result: ExperimentResult) -> list[ResultRow]:
    rows = []
    for c in result.comparisons:
        p = c.p_adjusted if c.p_adjusted is not None else c.p_value
        rows.append(
            ResultRow(
                c.metric, c.variant, c.control_value, c.variant_value, _num(c.lift),
                _num(c.lift_ci[0]), _num(c.lift_ci[1]), p, c.significant(result.alpha), c.method,
            )
        )
    return rows


@dataclass
class ForestRow:
    """One row of the lift plot in SVG coordinates (x in 0..100)."""

    label: str
    x: float
    x_low: float
    x_high: float
    positive: bool


def forest(rows: list[ResultRow]) -> tuple[list[ForestRow], float, float]:
    """Rows placed on a symmetric axis around zero; returns them, the zero line x, and the
    axis half-width in percent."""
    spans = [abs(v) for r in rows for v in (r.lift_low, r.lift_high, r.lift) if v is not None]
    half = max(spans, default=0.1) * 1.1 or 0.1

    def x(v: float) -> float:
        return 50.0 + 50.0 * v / half

    out = []
    for r in rows:
        if r.lift is None:
            continue
        low = r.lift_low if r.lift_low is not None else r.lift
        high = r.lift_high if r.lift_high is not None else r.lift
        out.append(ForestRow(f"{r.metric}: {r.variant}", x(r.lift), x(low), x(high),
                             r.lift >= 0))
    return out, 50.0, 100 * half
