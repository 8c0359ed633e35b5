"""The directional interest model and the reciprocal combination.

``DirectionalModel`` is an L2-regularised logistic regression (plain numpy, Newton steps: the
serving process needs no training extras) that predicts ``P(x acts towards y)`` from
:mod:`personify.networking.features`. It is learned from who answers, comments on, accepts,
replies to and follows whom.

A pair is recommended by the **harmonic mean** of the two directions,
``2·s(a→b)·s(b→a) / (s(a→b) + s(b→a))``. Why the harmonic mean: a connection only happens when
both sides act, so the score must be high only when *both* directions are; the harmonic mean is
at most twice the smaller side, so a pair everyone wants on one side (the famous expert) but who
is unlikely to answer back is discounted, while two balanced moderate interests are kept. The
arithmetic mean would let one enthusiastic side carry the pair; the product (the probability of
both under independence) ranks by overall activity and compresses the scale, which makes scores
hard to compare and to threshold. Reciprocal recommenders for people (RECON, Pizzato et al.
2010; Xia et al. 2015) use the same combination.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from personify.networking.features import FEATURES


def harmonic(forward: float, backward: float) -> float:
    total = forward + backward
    return 0.0 if total <= 0 else 2.0 * forward * backward / total


@dataclass(slots=True)
class DirectionalModel:
    weights: NDArray[np.float64]
    bias: float
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    features: tuple[str, ...] = FEATURES

    @classmethod
    def fit(
        cls,
        x: NDArray[np.float64],
        y: NDArray[np.float64],
        *,
        l2: float = 1.0,
        iterations: int = 50,
    ) -> DirectionalModel:
        """Newton's method on the penalised log-likelihood (the bias is not penalised)."""
        if x.shape[0] == 0 or y.min() == y.max():
            raise ValueError("training the directional model needs both positive and negative rows")
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale == 0] = 1.0
        z = np.hstack([(x - mean) / scale, np.ones((x.shape[0], 1))])
        w = np.zeros(z.shape[1])
        w[-1] = np.log(y.mean() / (1 - y.mean()))
        penalty = np.full(z.shape[1], l2)
        penalty[-1] = 0.0
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-(z @ w)))
            grad = z.T @ (p - y) + penalty * w
            hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(w))
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
        )
