"""BG/NBD and Gamma-Gamma against the published figures and by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from personify.insights import clv

CDNOW = clv.BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
"""Fader, Hardie & Lee (2005), "Counting your customers the easy way", CDNOW, weeks."""


def test_conditional_expectation_matches_the_paper() -> None:
    # FHL 2005, section 5: a customer with x = 2, t_x = 30.43, T = 38.86 weeks is expected to
    # make 1.226 purchases in the next 39 weeks
    expected = float(clv.expected_purchases(CDNOW, 39, 2, 30.43, 38.86))
    assert expected == pytest.approx(1.226, abs=5e-4)


def test_probability_alive_properties() -> None:
    # no repeat purchase: the model cannot have seen a dropout (p = 1); a long silence lowers it
    assert float(clv.probability_alive(CDNOW, 0, 0, 30)) == 1.0
    recent = float(clv.probability_alive(CDNOW, 5, 30, 31))
    silent = float(clv.probability_alive(CDNOW, 5, 5, 31))
    assert 0 < silent < recent < 1


def test_new_customer_expectation_is_increasing_and_concave() -> None:
    values = clv.expected_purchases_new(CDNOW, np.array([13.0, 26.0, 39.0, 52.0]))
    steps = np.diff(values)
    assert np.all(steps > 0) and np.all(np.diff(steps) < 0)


def _simulate_bgnbd(params: clv.BgNbdParams, n: int, rng: np.random.Generator):
    lam = rng.gamma(params.r, 1 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    T = rng.uniform(30, 60, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i]:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                break
    return x, t_x, T


def test_fit_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(7)
    truth = clv.BgNbdParams(r=0.5, alpha=6.0, a=0.8, b=2.5)
    x, t_x, T = _simulate_bgnbd(truth, 6000, rng)
    fitted = clv.fit_bgnbd(x, t_x, T)
    assert fitted.r == pytest.approx(truth.r, rel=0.15)
    assert fitted.alpha == pytest.approx(truth.alpha, rel=0.2)
    assert fitted.a == pytest.approx(truth.a, rel=0.35)
    assert fitted.b == pytest.approx(truth.b, rel=0.35)
    at_truth = clv.bgnbd_log_likelihood(truth, x, t_x, T).sum()
    at_fit = clv.bgnbd_log_likelihood(fitted, x, t_x, T).sum()
    assert at_fit >= at_truth  # the maximum, not just near the truth


def test_gamma_gamma_recovers_simulated_parameters_and_shrinks() -> None:
    rng = np.random.default_rng(3)
    truth = clv.GammaGammaParams(p=6.25, q=3.74, gamma=15.44)  # CDNOW (Fader & Hardie 2013)
    n = 5000
    nu = rng.gamma(truth.q, 1 / truth.gamma, n)
    x = rng.integers(1, 8, n).astype(float)
    means = np.array([rng.gamma(truth.p, 1 / v, int(k)).mean() for v, k in zip(nu, x, strict=True)])
    fitted = clv.fit_gamma_gamma(x, means)
    assert fitted.p == pytest.approx(truth.p, rel=0.15)
    assert fitted.q == pytest.approx(truth.q, rel=0.15)
    assert fitted.gamma == pytest.approx(truth.gamma, rel=0.2)
    population_mean = truth.p * truth.gamma / (truth.q - 1)
    one = float(clv.expected_mean_value(truth, 1, 100.0))
    many = float(clv.expected_mean_value(truth, 20, 100.0))
    assert population_mean < one < many < 100.0  # more evidence, less shrinkage
    assert float(clv.expected_mean_value(truth, 0, 0.0)) == pytest.approx(population_mean)
