"""Exponentially decayed counters kept in log space, so they never need rescaling.

A counter that received weights ``w_i`` at times ``t_i`` is worth
``sum_i w_i * exp(-lam * (now - t_i))`` at ``now``. We store
``score = ln(sum_i w_i * exp(lam * (t_i - T_REF)))``: one number per (segment, item) that is
independent of ``now``. Reading is ``exp(score - lam * (now - T_REF))``; ordering by ``score``
is ordering by the current value at every ``now``, so a Redis sorted set keyed by ``score``
answers "top N trending" with a plain ZREVRANGE and no background rescaling job. Scores grow
by ``lam`` per second (about 0.7 per half-life), so doubles never overflow (unlike the linear
``w * exp(lam * t)`` trick) and keep ~1e-12 relative precision for centuries.
"""

from __future__ import annotations

import math
from datetime import timedelta

T_REF = 1_577_836_800.0
"""2020-01-01T00:00:00Z, the reference time of stored scores (keeps them small)."""

GONE = 1e-9
"""A subtraction that leaves less than this fraction of the counter removes it."""


def decay_rate(half_life: timedelta) -> float:
    """``lam`` per second for a half-life."""
    return math.log(2.0) / half_life.total_seconds()


def log_weight(weight: float, ts: float, lam: float) -> float:
    """The stored score of a single ``weight`` received at ``ts`` (epoch seconds)."""
    return math.log(weight) + lam * (ts - T_REF)


def value_at(score: float, now: float, lam: float) -> float:
    """The decayed value at ``now`` of a stored score."""
    return math.exp(score - lam * (now - T_REF))


def score_floor(minimum: float, now: float, lam: float) -> float:
    """The stored score below which a counter is worth less than ``minimum`` at ``now``."""
    return math.log(minimum) + lam * (now - T_REF)


def log_add(a: float, b: float) -> float:
    """``ln(exp(a) + exp(b))`` without overflow."""
    if a < b:
        a, b = b, a
    return a + math.log1p(math.exp(b - a))


def log_sub(a: float, b: float) -> float | None:
    """``ln(exp(a) - exp(b))``, or ``None`` when (almost) nothing is left."""
    ratio = math.exp(b - a)
    if ratio >= 1.0 - GONE:
        return None
    return a + math.log1p(-ratio)
