"""Analysis of an experiment: per-variant comparisons, SRM, horizon, peeking guard, verdict.

Input is per-unit samples of exposed units only (see :mod:`personify.experiments.exposure`):
``data[variant][metric] = MetricSamples(...)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np

from personify.domain.errors import InvalidInput
from personify.experiments.definitions import Experiment, Metric, MetricKind
from personify.experiments.sequential import msprt
from personify.experiments.stats import (
    Comparison,
    SampleRatioCheck,
    compare_means,
    compare_proportions,
    compare_ratios,
    cuped_adjust,
    cuped_theta,
    holm,
    sample_ratio_check,
)


@dataclass(frozen=True)
class MetricSamples:
    """One metric for one variant, one entry per exposed unit.

    ``values``: 0/1 (proportion), the value (mean) or the numerator (ratio); ``denominators`` for
    ratio metrics; ``covariate``: the same metric before the experiment, for CUPED.
    """

    values: np.ndarray
    denominators: np.ndarray | None = None
    covariate: np.ndarray | None = None


@dataclass
class ExperimentResult:
    """Everything a report shows. ``final`` is False before a fixed horizon is reached."""

    experiment: str
    control: str
    alpha: float
    units: dict[str, int]
    srm: SampleRatioCheck
    comparisons: list[Comparison]
    primary_metric: str
    guardrails: list[str]
    sequential: bool
    final: bool
    horizon_note: str
    verdict: str = ""
    notes: list[str] = field(default_factory=list)

    def for_metric(self, metric: str) -> list[Comparison]:
        return [c for c in self.comparisons if c.metric == metric]


def analyze(
    experiment: Experiment,
    data: Mapping[str, Mapping[str, MetricSamples]],
    *,
    now: datetime | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    tau: float | None = None,
) -> ExperimentResult:
    """Compare every variant with the control on the primary and guardrail metrics.

    Holm's correction runs over the variants of each metric. With ``experiment.sequential`` the
    primary metric gets always-valid mSPRT p-values and intervals (mixing sd ``tau``, default 5 %
    of the control value); otherwise significance is withheld until the fixed horizon.
    """
    control = experiment.control_name
    names = [v.name for v in experiment.variants]
    for name in names:
        if name not in data:
            raise InvalidInput(f"no data for variant {name!r}", field="data", accepted=str(names))
    metrics = [experiment.primary_metric, *experiment.guardrail_metrics]
    units = {v: _n_units(data[v], experiment.primary_metric.name) for v in names}
    srm = sample_ratio_check(units, {v.name: v.weight for v in experiment.variants})
    notes: list[str] = []
    comparisons: list[Comparison] = []
    for metric in metrics:
        rows = _compare_metric(experiment, metric, data, control, n_bootstrap, seed, notes)
        adjusted = holm([c.p_value for c in rows])
        rows = [replace(c, p_adjusted=p) for c, p in zip(rows, adjusted, strict=True)]
        if experiment.sequential and metric.name == experiment.primary_metric.name:
            rows = [_sequentialize(c, experiment.alpha, tau, len(rows)) for c in rows]
        comparisons.extend(rows)
    final, horizon_note = _horizon(experiment, units, now or datetime.now(UTC))
    result = ExperimentResult(
        experiment.name,
        control,
        experiment.alpha,
        units,
        srm,
        comparisons,
        experiment.primary_metric.name,
        [m.name for m in experiment.guardrail_metrics],
        experiment.sequential,
        final,
        horizon_note,
        notes=notes,
    )
    result.verdict = verdict(result, experiment)
    return result


def _n_units(samples: Mapping[str, MetricSamples], metric: str) -> int:
    if metric not in samples:
        raise InvalidInput(f"no samples for metric {metric!r}", field="data", accepted=metric)
    return len(samples[metric].values)


def _compare_metric(
    experiment: Experiment,
    metric: Metric,
    data: Mapping[str, Mapping[str, MetricSamples]],
    control: str,
    n_bootstrap: int,
    seed: int,
    notes: list[str],
) -> list[Comparison]:
    samples = {v: data[v][metric.name] for v in data if metric.name in data[v]}
    if control not in samples:
        raise InvalidInput(f"no control samples for {metric.name!r}", field="data")
    use_cuped = metric.kind != MetricKind.RATIO and all(
        s.covariate is not None for s in samples.values()
    )
    values = {v: np.asarray(s.values, dtype=float) for v, s in samples.items()}
    if use_cuped:
        ys = np.concatenate([values[v] for v in values])
        xs = np.concatenate([np.asarray(samples[v].covariate, dtype=float) for v in values])
        theta, xbar = cuped_theta(ys, xs), float(xs.mean())
        values = {
            v: cuped_adjust(values[v], np.asarray(samples[v].covariate), theta, xbar)
            for v in values
        }
        notes.append(f"{metric.name}: CUPED with theta = {theta:.3g}")
    rows: list[Comparison] = []
    alpha = experiment.alpha
    for v in (x.name for x in experiment.variants):
        if v == control or v not in samples:
            continue
        if metric.kind == MetricKind.RATIO:
            den_c, den_v = samples[control].denominators, samples[v].denominators
            if den_c is None or den_v is None:
                raise InvalidInput(
                    f"ratio metric {metric.name!r} needs denominators", field="denominators"
                )
            comp = compare_ratios(
                values[control],
                den_c,
                values[v],
                den_v,
                metric=metric.name,
                variant=v,
                control=control,
                alpha=alpha,
            )
        elif metric.kind == MetricKind.PROPORTION and not use_cuped:
            comp = compare_proportions(
                int(values[control].sum()),
                len(values[control]),
                int(values[v].sum()),
                len(values[v]),
                metric=metric.name,
                variant=v,
                control=control,
                alpha=alpha,
            )
        else:
            comp = compare_means(
                values[control],
                values[v],
                metric=metric.name,
                variant=v,
                control_name=control,
                alpha=alpha,
                n_bootstrap=n_bootstrap if metric.kind == MetricKind.MEAN else 0,
                seed=seed,
            )
        if use_cuped:
            comp = replace(comp, method=comp.method + " + CUPED")
        rows.append(comp)
    return rows


def _sequentialize(c: Comparison, alpha: float, tau: float | None, k: int) -> Comparison:
    z = 1.959963984540054
    se = (c.diff_ci[1] - c.diff_ci[0]) / (2 * z)
    scale = tau if tau is not None else 0.05 * abs(c.control_value) or 1e-3
    seq = msprt(c.diff, se * se, tau2=scale * scale, alpha=alpha / k)
    base = c.control_value
    lift_ci = (seq.ci[0] / base, seq.ci[1] / base) if base > 0 else (math.nan, math.nan)
    p = min(1.0, seq.p_value * k)
    return replace(
        c,
        method=c.method + ", always-valid mSPRT",
        p_value=seq.p_value,
        p_adjusted=p,
        diff_ci=seq.ci,
        lift_ci=lift_ci,
    )


def _horizon(experiment: Experiment, units: Mapping[str, int], now: datetime) -> tuple[bool, str]:
    if experiment.sequential:
        return True, "sequential (always-valid) intervals: safe to look at any time"
    smallest = min(units.values()) if units else 0
    if experiment.planned_sample_size is not None and smallest >= experiment.planned_sample_size:
        return True, f"fixed horizon reached ({smallest} >= {experiment.planned_sample_size} units)"
    if experiment.end_at is not None and now >= experiment.end_at:
        return True, f"fixed horizon reached (end date {experiment.end_at.date()})"
    planned = (
        f"{smallest} of {experiment.planned_sample_size} planned units per variant"
        if experiment.planned_sample_size
        else f"before the end date {experiment.end_at.date() if experiment.end_at else '?'}"
    )
    return False, f"not final: {planned}; significance is withheld until the horizon"


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f} %"


def verdict(result: ExperimentResult, experiment: Experiment) -> str:
    """One plain-language paragraph: primary effect per variant, guardrails, SRM, horizon."""
    parts: list[str] = []
    level = round(100 * (1 - result.alpha))
    for c in result.for_metric(result.primary_metric):
        ci = f"{level} % CI {_pct(c.lift_ci[0])} .. {_pct(c.lift_ci[1])}"
        if result.final and c.significant(result.alpha):
            direction = "increases" if c.diff > 0 else "decreases"
            parts.append(
                f"{c.variant} {direction} {c.metric} by {_pct(abs(c.lift))}"
                f" ({ci}, p = {c.p_adjusted:.3g})"
            )
        elif result.final:
            parts.append(
                f"{c.variant} shows no significant change in {c.metric} ({_pct(c.lift)}, {ci})"
            )
        else:
            parts.append(f"{c.variant} vs {c.control} on {c.metric}: {_pct(c.lift)} so far ({ci})")
    guard = {m.name: m for m in experiment.guardrail_metrics}
    for name in result.guardrails:
        for c in result.for_metric(name):
            worse = (c.diff < 0) == guard[name].higher_is_better
            if result.final and worse and c.significant(result.alpha):
                parts.append(f"guardrail {name} worsens for {c.variant} ({_pct(c.lift)})")
    if result.guardrails and not any(p.startswith("guardrail") for p in parts):
        parts.append("guardrails OK")
    if result.srm.ok:
        parts.append(f"sample ratio OK (p = {result.srm.p_value:.2g})")
    else:
        parts.append(
            f"SAMPLE RATIO MISMATCH (p = {result.srm.p_value:.2g}): the split is broken,"
            " do not trust these results"
        )
    if not result.final:
        parts.append(result.horizon_note)
    return "; ".join(parts)
