"""Always-valid inference for peeking: the mixture SPRT of Johari, Pekelis and Walsh (2017).

For a difference estimate ``d`` with variance ``v`` (normal approximation) and a normal mixing
prior N(0, tau^2) on the true difference, the mixture likelihood ratio against theta is

    L(theta) = sqrt(v / (v + tau^2)) * exp((d - theta)^2 tau^2 / (2 v (v + tau^2)))

and ``min(1, 1 / L(0))`` is an always-valid p-value: checking it after every new unit still keeps
the false-positive rate at most alpha. Inverting ``L(theta) < 1 / alpha`` gives an always-valid
confidence interval. Pass earlier looks' p-values to keep the running minimum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class SequentialResult:
    p_value: float
    ci: tuple[float, float]
    tau2: float


def msprt(
    diff: float,
    variance: float,
    *,
    tau2: float,
    alpha: float = 0.05,
    previous_p: Iterable[float] = (),
) -> SequentialResult:
    """Always-valid p-value and interval of a difference ``diff`` with sampling ``variance``."""
    if variance <= 0 or tau2 <= 0 or math.isnan(variance):
        return SequentialResult(1.0, (-math.inf, math.inf), tau2)
    v = variance
    log_l = 0.5 * math.log(v / (v + tau2)) + diff * diff * tau2 / (2 * v * (v + tau2))
    p = 1.0 if log_l <= 0 else min(1.0, math.exp(-log_l))
    for prev in previous_p:
        p = min(p, prev)
    half = math.sqrt(
        2 * v * (v + tau2) / tau2 * (math.log(1 / alpha) + 0.5 * math.log((v + tau2) / v))
    )
    return SequentialResult(p, (diff - half, diff + half), tau2)
