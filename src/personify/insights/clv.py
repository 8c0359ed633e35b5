"""Customer-base models: BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy
way") and Gamma-Gamma spend (Fader, Hardie & Lee 2005, "RFM and CLV"; Fader & Hardie 2013 note),
implemented from the published likelihoods with NumPy / SciPy.

Why not PyMC-Marketing's CLV module: it is not on the package index this project installs from,
and it pulls PyMC and PyTensor (a compiler toolchain at run time) into a process that only needs
four maximum-likelihood parameters; the closed forms below are a few dozen lines and are checked
against the paper's published figures and by simulation (tests/insights/test_clv.py).

Inputs per customer, in one time unit (days here): ``x`` repeat purchases (purchase days after
the first), ``t_x`` time of the last purchase since the first, ``T`` time from the first purchase
to the end of observation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

Array = NDArray[np.float64]


@dataclass(frozen=True)
class BgNbdParams:
    """Purchase rate ~ Gamma(r, alpha) while alive; dropout after each purchase ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class GammaGammaParams:
    """Transaction value ~ Gamma(p, nu), nu ~ Gamma(q, gamma) across customers."""

    p: float
    q: float
    gamma: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _arrays(*values: ArrayLike) -> list[Array]:
    return [np.asarray(v, dtype=np.float64) for v in values]


def bgnbd_log_likelihood(
    params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> Array:
    """Per-customer log-likelihood (FHL 2005, eq. 6)."""
    xs, tx, tt = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_a1 = special.gammaln(r + xs) - special.gammaln(r) + r * np.log(alpha)
    log_beta = special.betaln(a, b)
    term1 = special.betaln(a, b + xs) - log_beta - (r + xs) * np.log(alpha + tt)
    with np.errstate(divide="ignore", invalid="ignore"):
        term2 = (
            special.betaln(a + 1, np.maximum(b + xs - 1, 1e-12)) - log_beta
            - (r + xs) * np.log(alpha + tx)
        )
    term2 = np.where(xs > 0, term2, -np.inf)
    return log_a1 + np.logaddexp(term1, term2)


def fit_bgnbd(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, *, weights: ArrayLike | None = None
) -> BgNbdParams:
    """Maximum-likelihood parameters (L-BFGS-B on log parameters, a small ridge keeps them
    finite on degenerate data)."""
    xs, tx, tt = _arrays(x, t_x, T)
    w = np.ones_like(xs) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(xs) < 2:
        raise ValueError("BG/NBD needs at least two customers")
    scale = max(float(np.mean(tt)), 1e-9)

    def loss(theta: Array) -> float:
        r, alpha, a, b = np.exp(theta)
        ll = bgnbd_log_likelihood(BgNbdParams(r, alpha * scale, a, b), xs, tx, tt)
        return float(-(w * ll).sum() / w.sum())

    start = np.log([1.0, 1.0, 1.0, 1.0])
    best = optimize.minimize(loss, start, method="L-BFGS-B", bounds=[(-12, 12)] * 4)
    r, alpha, a, b = np.exp(best.x)
    return BgNbdParams(float(r), float(alpha * scale), float(a), float(b))


def probability_alive(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """P(still active | x, t_x, T) (FHL 2005, eq. 11)."""
    xs, tx, tt = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = (
            np.log(a) - np.log(np.maximum(b + xs - 1, 1e-12))
            + (r + xs) * (np.log(alpha + tt) - np.log(alpha + tx))
        )
    odds = np.where(xs > 0, np.exp(np.minimum(log_ratio, 700)), 0.0)
    return np.asarray(1.0 / (1.0 + odds))


def expected_purchases(
    params: BgNbdParams, t: float, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> Array:
    """E[purchases in the next ``t`` | x, t_x, T] (FHL 2005, eq. 10)."""
    xs, tx, tt = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + tt + t)
    hyp = special.hyp2f1(r + xs, b + xs, a + b + xs - 1, z)
    head = (a + b + xs - 1) / (a - 1)
    body = 1 - ((alpha + tt) / (alpha + tt + t)) ** (r + xs) * hyp
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.where(
            xs > 0,
            a / np.maximum(b + xs - 1, 1e-12) * ((alpha + tt) / (alpha + tx)) ** (r + xs),
            0.0,
        )
    return np.asarray(head * body / (1 + tail))


def probability_no_purchase(
    params: BgNbdParams, t: float, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> Array:
    """P(no purchase in the next ``t`` | x, t_x, T): dropped out, or alive (dropout happens only
    at a purchase, so an alive customer without a purchase stays alive) with no purchase at the
    posterior rate Gamma(r + x, alpha + T)."""
    xs, tx, tt = _arrays(x, t_x, T)
    alive = probability_alive(params, xs, tx, tt)
    quiet = ((params.alpha + tt) / (params.alpha + tt + t)) ** (params.r + xs)
    return np.asarray(1 - alive + alive * quiet)


def expected_purchases_new(params: BgNbdParams, t: ArrayLike) -> Array:
    """E[X(t)] for a customer just acquired (FHL 2005, eq. 9)."""
    (ts,) = _arrays(t)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    hyp = special.hyp2f1(r, b, a + b - 1, ts / (alpha + ts))
    return np.asarray((a + b - 1) / (a - 1) * (1 - (alpha / (alpha + ts)) ** r * hyp))


def gamma_gamma_log_likelihood(
    params: GammaGammaParams, x: ArrayLike, mean_value: ArrayLike
) -> Array:
    """Per-customer log-density of the mean transaction value ``mean_value`` over ``x``
    transactions (Fader & Hardie 2013, eq. 4)."""
    xs, mx = _arrays(x, mean_value)
    p, q, g = params.p, params.q, params.gamma
    return np.asarray(
        special.gammaln(p * xs + q) - special.gammaln(p * xs) - special.gammaln(q)
        + q * np.log(g) + (p * xs - 1) * np.log(mx) + p * xs * np.log(xs)
        - (p * xs + q) * np.log(g + mx * xs)
    )


def fit_gamma_gamma(x: ArrayLike, mean_value: ArrayLike) -> GammaGammaParams:
    """Maximum-likelihood parameters over customers with ``x > 0`` and a positive mean value."""
    xs, mx = _arrays(x, mean_value)
    keep = (xs > 0) & (mx > 0)
    xs, mx = xs[keep], mx[keep]
    if len(xs) < 2:
        raise ValueError("Gamma-Gamma needs at least two repeat customers with spend")
    scale = float(np.mean(mx))

    def loss(theta: Array) -> float:
        p, q, g = np.exp(theta)
        ll = gamma_gamma_log_likelihood(GammaGammaParams(p, q, g), xs, mx / scale)
        return float(-ll.mean())

    best = optimize.minimize(loss, np.log([1.0, 2.0, 1.0]), method="L-BFGS-B",
                             bounds=[(-10, 10)] * 3)
    p, q, g = np.exp(best.x)
    return GammaGammaParams(float(p), float(q), float(g * scale))


def expected_mean_value(params: GammaGammaParams, x: ArrayLike, mean_value: ArrayLike) -> Array:
    """E[mean transaction value | x, m_x]: the population mean shrunk towards the customer's own
    (Fader & Hardie 2013, eq. 5); the population mean ``p gamma / (q - 1)`` when ``x = 0``."""
    xs, mx = _arrays(x, mean_value)
    p, q, g = params.p, params.q, params.gamma
    mx = np.where(xs > 0, mx, 0.0)
    return np.asarray((g + mx * xs) * p / (p * xs + q - 1))
