"""The directional interest model and the reciprocal combination.

``DirectionalModel`` is an L2-regularised logistic regression (plain numpy, Newton steps: the
serving process needs no training extras) that predicts ``P(x acts towards y)`` from
:mod:`personify.networking.features`. It is learned from who answers, comments on, accepts,
replies to and follows whom.

A pair is recommended by a **weighted geometric mean** of the two directions,
``s(a→b)^α · s(b→a)^(1−α)``, with the forward share ``α`` learned together with the model on a
validation period carved from the training history (:mod:`personify.networking.training`) and kept
between ``MIN_SHARE`` and ``1 − MIN_SHARE``. Why this combination: a connection only happens when
both sides act, so the score must vanish when *either* direction does; ``α = ½`` ranks exactly as
the product ``s(a→b)·s(b→a)`` (the chance that both act, if independent). A network where one
side decides more than the other (on a Q&A site the answerer chooses whom to answer) moves ``α``
away from ½, but never past the bounds: a pair everyone wants on one side (the famous expert) who
is unlikely to answer back is always discounted. The harmonic mean (RECON, Pizzato et al. 2010) is
kept as a fixed alternative for the evaluation (``mode="harmonic"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from personify.networking.features import FEATURES

MIN_SHARE = 0.25
"""Neither side's share of the reciprocal score falls below this (one-sided interest is always
discounted)."""
SHARES: tuple[float, ...] = (0.25, 0.35, 0.5, 0.65, 0.75)
"""Forward shares tried on the validation period."""


def harmonic(forward: float, backward: float) -> float:
    total = forward + backward
    return 0.0 if total <= 0 else 2.0 * forward * backward / total


def reciprocal(forward: float, backward: float, share: float = 0.5) -> float:
    """``forward^share · backward^(1-share)``: 0 when either side is."""
    if forward <= 0.0 or backward <= 0.0:
        return 0.0
    return math.exp(share * math.log(forward) + (1.0 - share) * math.log(backward))


@dataclass(slots=True)
class DirectionalModel:
    weights: NDArray[np.float64]
    bias: float
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    features: tuple[str, ...] = FEATURES
    forward_share: float = 0.5
    """``α`` of the reciprocal combination (learned on the validation period)."""
    validation: dict[str, float] = field(default_factory=dict)
    """what the training measured on its validation period (kept with the model)."""

    @classmethod
    def fit(
        cls,
        x: NDArray[np.float64],
        y: NDArray[np.float64],
        *,
        l2: float = 1.0,
        iterations: int = 50,
        sample_weight: NDArray[np.float64] | None = None,
    ) -> DirectionalModel:
        """Newton's method on the penalised (``sample_weight``-weighted) log-likelihood (the
        bias is not penalised)."""
        if x.shape[0] == 0 or y.min() == y.max():
            raise ValueError("training the directional model needs both positive and negative rows")
        sw = np.ones(x.shape[0]) if sample_weight is None else np.asarray(sample_weight, float)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale == 0] = 1.0
        z = np.hstack([(x - mean) / scale, np.ones((x.shape[0], 1))])
        w = np.zeros(z.shape[1])
        rate = float(np.average(y, weights=sw))
        w[-1] = np.log(rate / (1 - rate))
        penalty = np.full(z.shape[1], l2)
        penalty[-1] = 0.0
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-(z @ w)))
            grad = z.T @ (sw * (p - y)) + penalty * w
            hess = ((z * (sw * p * (1 - p))[:, None]).T @ z + np.diag(penalty)
                    + 1e-9 * np.eye(len(w)))
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        return cls(weights=w[:-1], bias=float(w[-1]), mean=mean, scale=scale)

    def predict(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        logits = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)

    def contributions(self, row: NDArray[np.float64]) -> dict[str, float]:
        """Each feature's share of the logit for one row (what drove a score)."""
        parts = ((row - self.mean) / self.scale) * self.weights
        return {name: float(v) for name, v in zip(self.features, parts, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "weights": self.weights.tolist(),
            "bias": self.bias,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "combination": {"kind": "weighted_geometric_mean",
                            "forward_share": self.forward_share},
            "validation": dict(self.validation),
        }

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> DirectionalModel:
        features = tuple(body["features"])
        if features != FEATURES:
            raise ValueError(f"model features {features} differ from this version's {FEATURES}")
        return cls(
            weights=np.asarray(body["weights"], dtype=np.float64),
            bias=float(body["bias"]),
            mean=np.asarray(body["mean"], dtype=np.float64),
            scale=np.asarray(body["scale"], dtype=np.float64),
            forward_share=_share(body.get("combination", {}).get("forward_share", 0.5)),
            validation={str(k): float(v) for k, v in body.get("validation", {}).items()},
        )

    def with_share(self, share: float) -> DirectionalModel:
        return DirectionalModel(self.weights, self.bias, self.mean, self.scale, self.features,
                                _share(share), dict(self.validation))


def _share(value: object) -> float:
    if not isinstance(value, (int, float)) or not MIN_SHARE <= float(value) <= 1.0 - MIN_SHARE:
        raise ValueError(f"forward_share {value!r} is outside [{MIN_SHARE}, {1 - MIN_SHARE}]")
    return float(value)
