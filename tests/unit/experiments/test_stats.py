from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from personify.domain.errors import InvalidInput
from personify.experiments.sequential import msprt
from personify.experiments.stats import (
    compare_means,
    compare_proportions,
    compare_ratios,
    cuped_adjust,
    cuped_theta,
    holm,
    newcombe_interval,
    required_sample_size,
    required_units_for_difference,
    sample_ratio_check,
    wilson_interval,
)


def test_wilson_matches_reference_values() -> None:
    # Newcombe (1998), table I: 81/263 -> 0.2553 .. 0.3662
    lo, hi = wilson_interval(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)


def test_newcombe_reference_example() -> None:
    # Newcombe (1998) example (56/70 vs 48/80): difference 0.2, interval 0.0524 .. 0.3339
    lo, hi = newcombe_interval(48, 80, 56, 70)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)


def test_two_proportion_z_matches_chi_square() -> None:
    c = compare_proportions(100, 1000, 130, 1000)
    table = np.array([[100, 900], [130, 870]])
    _chi2, p, _, _ = st.chi2_contingency(table, correction=False)
    assert c.p_value == pytest.approx(p, rel=1e-6)
    assert c.lift == pytest.approx(0.3)
    assert c.lift_ci[0] < 0.3 < c.lift_ci[1]


def test_welch_matches_scipy_and_bootstrap_brackets_lift() -> None:
    rng = np.random.default_rng(1)
    a = rng.lognormal(0, 1, 800)
    b = rng.lognormal(0.15, 1, 800)
    c = compare_means(a, b, n_bootstrap=500)
    assert c.p_value == pytest.approx(st.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-6)
    assert c.lift_ci[0] < c.lift < c.lift_ci[1]


def test_delta_method_ratio_covers_truth_over_seeds() -> None:
    covered = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        imps = rng.poisson(5, (2, 300)) + 1
        user_ctr = rng.beta(2, 30, (2, 300))  # clustered clicks inside users
        clicks = rng.binomial(imps, user_ctr)
        c = compare_ratios(clicks[0], imps[0], clicks[1], imps[1])
        covered += c.diff_ci[0] <= 0 <= c.diff_ci[1]
    assert 0.91 <= covered / 200 <= 0.99


def test_cuped_keeps_mean_and_reduces_variance() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(10, 3, 5000)
    y = x + rng.normal(0, 1, 5000)
    theta = cuped_theta(y, x)
    adj = cuped_adjust(y, x, theta, float(x.mean()))
    assert adj.mean() == pytest.approx(y.mean())
    assert adj.var() < 0.2 * y.var()


def test_srm_flags_broken_split() -> None:
    assert sample_ratio_check({"A": 5000, "B": 5050}, {"A": 1, "B": 1}).ok
    bad = sample_ratio_check({"A": 5000, "B": 5600}, {"A": 1, "B": 1})
    assert not bad.ok and bad.p_value < 1e-5


def test_holm_step_down() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_required_sample_size_reference() -> None:
    # 10 % -> 12 % at alpha 0.05, power 0.8: about 3,841 per arm (standard calculators)
    assert required_sample_size(0.10, 0.20) == pytest.approx(3841, abs=5)


def test_units_for_a_difference_reach_the_stated_power_with_unequal_variances() -> None:
    """The variant's variance under the alternative counts: sized with both arms' variances,
    Welch tests on simulated data reject in about 80 % of runs; twice the control's variance
    (the simulator's old sizing) would give far fewer units and about 43 % power."""
    var_c, var_v, diff = 1.0, 4.0, 0.2
    n = required_units_for_difference(var_c, var_v, diff, power=0.8)
    assert n == math.ceil((st.norm.ppf(0.975) + st.norm.ppf(0.8)) ** 2 * 5.0 / 0.04)
    assert n > 2 * required_units_for_difference(var_c, var_c, diff)
    rng = np.random.default_rng(11)
    runs = 1000
    hits = 0
    for _ in range(runs):
        a = rng.normal(10.0, math.sqrt(var_c), n)
        b = rng.normal(10.0 + diff, math.sqrt(var_v), n)
        c = compare_means(a, b, n_bootstrap=0)
        hits += c.p_value < 0.05 and c.diff > 0
    se = math.sqrt(0.8 * 0.2 / runs)
    assert abs(hits / runs - 0.8) < 3 * se
    with pytest.raises(InvalidInput):
        required_units_for_difference(1.0, 1.0, 0.0)
    with pytest.raises(InvalidInput):
        required_units_for_difference(0.0, 0.0, 0.1)


def test_msprt_always_valid_under_continuous_peeking() -> None:
    """A/A with a look after every 50 units: the always-valid p must stay below alpha in at
    most ~alpha of the runs, while the naive z-test peeked the same way flags far more often."""
    rng = np.random.default_rng(3)
    runs, looks, step = 300, 40, 50
    seq_hits = naive_hits = 0
    for _ in range(runs):
        a = rng.normal(0, 1, looks * step).cumsum()
        b = rng.normal(0, 1, looks * step).cumsum()
        seq = naive = False
        for k in range(1, looks + 1):
            n = k * step
            diff = (b[n - 1] - a[n - 1]) / n
            var = 2 / n
            seq |= msprt(diff, var, tau2=0.1**2).p_value < 0.05
            naive |= abs(diff) / np.sqrt(var) > 1.96
        seq_hits += seq
        naive_hits += naive
    assert seq_hits / runs <= 0.06
    assert naive_hits / runs > 0.15
