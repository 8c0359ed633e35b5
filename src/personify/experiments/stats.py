"""Statistical tests and intervals for comparing a variant with the control.

Pure functions over arrays: proportions (two-proportion z-test, Wilson and Newcombe intervals),
skewed means (Welch t-test, percentile bootstrap of the relative lift), ratio metrics (delta
method), CUPED adjustment, the sample-ratio-mismatch check and Holm's correction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from personify.domain.errors import InvalidInput


@dataclass(frozen=True)
class Comparison:
    """A variant against the control on one metric.

    ``diff`` is variant minus control; ``lift`` is the relative change ``variant / control - 1``
    with its interval (NaN when the control value is 0).
    """

    metric: str
    variant: str
    control: str
    method: str
    n_control: int
    n_variant: int
    control_value: float
    variant_value: float
    control_ci: tuple[float, float]
    variant_ci: tuple[float, float]
    diff: float
    diff_ci: tuple[float, float]
    lift: float
    lift_ci: tuple[float, float]
    p_value: float
    p_adjusted: float | None = None

    def significant(self, alpha: float) -> bool:
        p = self.p_adjusted if self.p_adjusted is not None else self.p_value
        return p < alpha


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def wilson_interval(successes: float, n: float, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) when n is 0."""
    if n <= 0:
        return (0.0, 1.0)
    z = _z(alpha)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe_interval(
    x_c: float, n_c: float, x_v: float, n_v: float, alpha: float = 0.05
) -> tuple[float, float]:
    """Newcombe's hybrid score interval of ``p_v - p_c`` (method 10), from two Wilson intervals."""
    p_c, p_v = x_c / n_c, x_v / n_v
    l_c, u_c = wilson_interval(x_c, n_c, alpha)
    l_v, u_v = wilson_interval(x_v, n_v, alpha)
    d = p_v - p_c
    low = d - math.sqrt((p_v - l_v) ** 2 + (u_c - p_c) ** 2)
    high = d + math.sqrt((u_v - p_v) ** 2 + (p_c - l_c) ** 2)
    return (low, high)


def _log_ratio_ci(
    m_c: float, var_c: float, m_v: float, var_v: float, alpha: float
) -> tuple[float, tuple[float, float]]:
    """Relative lift and its delta-method interval on the log ratio of two independent means."""
    if m_c <= 0 or m_v <= 0:
        lift = m_v / m_c - 1 if m_c != 0 else math.nan
        return lift, (math.nan, math.nan)
    se = math.sqrt(var_c / m_c**2 + var_v / m_v**2)
    z = _z(alpha)
    lr = math.log(m_v / m_c)
    return m_v / m_c - 1, (math.exp(lr - z * se) - 1, math.exp(lr + z * se) - 1)


def _check_units(name: str, n: int) -> None:
    if n < 2:
        raise InvalidInput(
            f"{name}: at least 2 units are needed per variant, got {n}",
            field=name,
            accepted=">= 2 units",
        )


def compare_proportions(
    x_c: int,
    n_c: int,
    x_v: int,
    n_v: int,
    *,
    metric: str = "conversion",
    variant: str = "B",
    control: str = "A",
    alpha: float = 0.05,
) -> Comparison:
    """Two-proportion z-test (pooled), Wilson intervals per arm, Newcombe for the difference."""
    _check_units("n_control", n_c)
    _check_units("n_variant", n_v)
    p_c, p_v = x_c / n_c, x_v / n_v
    pooled = (x_c + x_v) / (n_c + n_v)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_v))
    p_value = 1.0 if se0 == 0 else float(2 * stats.norm.sf(abs(p_v - p_c) / se0))
    lift, lift_ci = _log_ratio_ci(p_c, p_c * (1 - p_c) / n_c, p_v, p_v * (1 - p_v) / n_v, alpha)
    return Comparison(
        metric,
        variant,
        control,
        "two-proportion z-test",
        n_c,
        n_v,
        p_c,
        p_v,
        wilson_interval(x_c, n_c, alpha),
        wilson_interval(x_v, n_v, alpha),
        p_v - p_c,
        newcombe_interval(x_c, n_c, x_v, n_v, alpha),
        lift,
        lift_ci,
        p_value,
    )


def _mean_ci(values: np.ndarray, alpha: float) -> tuple[float, float]:
    m = float(values.mean())
    se = float(values.std(ddof=1) / math.sqrt(len(values)))
    t = float(stats.t.ppf(1 - alpha / 2, len(values) - 1))
    return (m - t * se, m + t * se)


def compare_means(
    control: np.ndarray,
    treatment: np.ndarray,
    *,
    metric: str = "revenue",
    variant: str = "B",
    control_name: str = "A",
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Welch t-test on per-unit values; the relative lift interval is a percentile bootstrap
    (``n_bootstrap`` resamples; 0 uses the delta method instead), robust to skewed revenue."""
    a = np.asarray(control, dtype=float)
    b = np.asarray(treatment, dtype=float)
    _check_units("n_control", len(a))
    _check_units("n_variant", len(b))
    m_a, m_b = float(a.mean()), float(b.mean())
    v_a, v_b = float(a.var(ddof=1)) / len(a), float(b.var(ddof=1)) / len(b)
    se = math.sqrt(v_a + v_b)
    if se == 0:
        p_value, dof = 1.0, float(len(a) + len(b) - 2)
    else:
        dof = (v_a + v_b) ** 2 / (
            (v_a**2 / (len(a) - 1) if v_a else 0) + (v_b**2 / (len(b) - 1) if v_b else 0)
        )
        p_value = float(2 * stats.t.sf(abs(m_b - m_a) / se, dof))
    t = float(stats.t.ppf(1 - alpha / 2, dof))
    lift, lift_ci = _log_ratio_ci(m_a, v_a, m_b, v_b, alpha)
    method = "Welch t-test"
    if n_bootstrap > 0 and m_a > 0:
        rng = np.random.default_rng(seed)
        boot_a = _bootstrap_means(a, n_bootstrap, rng)
        boot_b = _bootstrap_means(b, n_bootstrap, rng)
        ratios = boot_b[boot_a > 0] / boot_a[boot_a > 0] - 1
        if len(ratios) > 10:
            lo, hi = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
            lift_ci = (float(lo), float(hi))
            method = "Welch t-test, bootstrap lift interval"
    return Comparison(
        metric,
        variant,
        control_name,
        method,
        len(a),
        len(b),
        m_a,
        m_b,
        _mean_ci(a, alpha),
        _mean_ci(b, alpha),
        m_b - m_a,
        (m_b - m_a - t * se, m_b - m_a + t * se),
        lift,
        lift_ci,
        p_value,
    )


def _bootstrap_means(values: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means via multinomial counts (memory n_bootstrap x len(values) ints, chunked)."""
    out = np.empty(n_bootstrap)
    n = len(values)
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_bootstrap, chunk):
        stop = min(n_bootstrap, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return out


def ratio_stats(num: np.ndarray, den: np.ndarray) -> tuple[float, float]:
    """Ratio of sums and the delta-method variance of that ratio (units are independent)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    n = len(num)
    mx, my = float(num.mean()), float(den.mean())
    if my == 0:
        return math.nan, math.nan
    r = mx / my
    vx, vy = float(num.var(ddof=1)), float(den.var(ddof=1))
    cxy = float(np.cov(num, den, ddof=1)[0, 1])
    var = (vx - 2 * r * cxy + r * r * vy) / (my * my * n)
    return r, max(var, 0.0)


def compare_ratios(
    num_c: np.ndarray,
    den_c: np.ndarray,
    num_v: np.ndarray,
    den_v: np.ndarray,
    *,
    metric: str = "ctr",
    variant: str = "B",
    control: str = "A",
    alpha: float = 0.05,
) -> Comparison:
    """Ratio metrics per unit (e.g. clicks / impressions per user) with the delta method, which
    accounts for the correlation of a user's impressions."""
    _check_units("n_control", len(num_c))
    _check_units("n_variant", len(num_v))
    r_c, var_c = ratio_stats(num_c, den_c)
    r_v, var_v = ratio_stats(num_v, den_v)
    z = _z(alpha)
    se = math.sqrt(var_c + var_v)
    p_value = 1.0 if se == 0 or math.isnan(se) else float(2 * stats.norm.sf(abs(r_v - r_c) / se))
    lift, lift_ci = _log_ratio_ci(r_c, var_c, r_v, var_v, alpha)
    sc, sv = math.sqrt(var_c), math.sqrt(var_v)
    return Comparison(
        metric,
        variant,
        control,
        "delta method",
        len(num_c),
        len(num_v),
        r_c,
        r_v,
        (r_c - z * sc, r_c + z * sc),
        (r_v - z * sv, r_v + z * sv),
        r_v - r_c,
        (r_v - r_c - z * se, r_v - r_c + z * se),
        lift,
        lift_ci,
        p_value,
    )


def cuped_theta(values: np.ndarray, covariate: np.ndarray) -> float:
    """theta = cov(Y, X) / var(X), estimated on all units pooled (variants together)."""
    x = np.asarray(covariate, dtype=float)
    var = float(x.var(ddof=1))
    if var == 0:
        return 0.0
    return float(np.cov(np.asarray(values, dtype=float), x, ddof=1)[0, 1] / var)


def cuped_adjust(
    values: np.ndarray, covariate: np.ndarray, theta: float, covariate_mean: float
) -> np.ndarray:
    """CUPED: ``Y - theta (X - mean X)``; keeps the mean, removes the variance X explains."""
    return np.asarray(values, dtype=float) - theta * (
        np.asarray(covariate, dtype=float) - covariate_mean
    )


@dataclass(frozen=True)
class SampleRatioCheck:
    """Chi-square goodness of fit of the units per variant against the planned weights."""

    observed: dict[str, int]
    expected: dict[str, float]
    chi2: float
    p_value: float
    threshold: float

    @property
    def ok(self) -> bool:
        return self.p_value >= self.threshold


def sample_ratio_check(
    counts: dict[str, int], weights: dict[str, float], threshold: float = 0.001
) -> SampleRatioCheck:
    """Flag a sample-ratio mismatch when p < ``threshold`` (0.001, the usual SRM alarm)."""
    total = sum(counts.values())
    wsum = sum(weights.values())
    expected = {k: total * weights[k] / wsum for k in weights}
    if total == 0:
        return SampleRatioCheck(dict(counts), expected, 0.0, 1.0, threshold)
    obs = np.array([counts.get(k, 0) for k in weights], dtype=float)
    exp = np.array([expected[k] for k in weights])
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    p = float(stats.chi2.sf(chi2, len(weights) - 1))
    return SampleRatioCheck(dict(counts), expected, chi2, p, threshold)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def required_sample_size(
    base_rate: float, relative_lift: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Units per variant for a two-sided two-proportion test to detect ``relative_lift``."""
    if not 0 < base_rate < 1:
        raise InvalidInput("base_rate must be in (0, 1)", field="base_rate", accepted="(0, 1)")
    p1, p2 = base_rate, base_rate * (1 + relative_lift)
    za, zb = _z(alpha), float(stats.norm.ppf(power))
    pbar = (p1 + p2) / 2
    num = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(num * num / (p2 - p1) ** 2)


def required_units_for_difference(
    var_control: float,
    var_variant: float,
    difference: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int:
    """Units per variant for a two-sided z-test of a difference of means or ratios whose
    standard error is unpooled, ``sqrt(var_control / n + var_variant / n)`` (what
    ``compare_means`` and ``compare_ratios`` use): ``(z_{1-alpha/2} + z_power)^2
    (var_control + var_variant) / difference^2``.

    ``var_*`` are per-unit variances (for a ratio metric, of its delta-method linearization)
    *under the alternative*: an effect usually changes the variant's variance too, and sizing
    with twice the control's variance then under-powers the test.
    """
    if difference == 0 or not math.isfinite(difference):
        raise InvalidInput(
            "difference must be a non-zero number", field="difference", accepted="!= 0"
        )
    if var_control < 0 or var_variant < 0 or var_control + var_variant == 0:
        raise InvalidInput(
            "variances must be non-negative and not both 0",
            field="var_control",
            accepted=">= 0, sum > 0",
        )
    za, zb = _z(alpha), float(stats.norm.ppf(power))
    return math.ceil((za + zb) ** 2 * (var_control + var_variant) / difference**2)
