"""A weighted blend of several models' per-user normalised scores (an ensemble).

Weights are meant to be chosen on a validation split (``personify.evaluation.tuning``), never
on test data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms.base import IdArray, Recommender, ScoreArray
from personify.data.interactions import Interactions
from personify.domain.errors import ConfigurationError

NORMALIZATIONS = ("max", "zscore", "none")


def normalize_rows(scores: NDArray[Any], how: str) -> NDArray[np.float32]:
    """Per-row normalisation so that models on different scales can be added."""
    s = np.asarray(scores, dtype=np.float32)
    if how == "max":
        peak = np.abs(s).max(axis=1, keepdims=True)
        return np.divide(s, peak, out=np.zeros_like(s), where=peak > 0)
    if how == "zscore":
        mean = s.mean(axis=1, keepdims=True)
        std = s.std(axis=1, keepdims=True)
        return np.divide(s - mean, std, out=np.zeros_like(s), where=std > 0)
    return s


class ScoreBlend(Recommender):
    """``sum_k weight_k * normalize(score_k)`` over component models built from the registry."""

    name: ClassVar[str] = "blend"
    fitted_attribute: ClassVar[str] = "models_"

    def __init__(
        self,
        components: Sequence[tuple[str, Mapping[str, Any]]] = (("ease", {}), ("rp3beta", {})),
        weights: Sequence[float] | None = None,
        *,
        normalize: Literal["max", "zscore", "none"] = "max",
    ) -> None:
        self.components = [(name, dict(params)) for name, params in components]
        self.weights = list(weights) if weights is not None else [1.0] * len(self.components)
        self.normalize = normalize

    def fit(self, data: Interactions) -> Self:
        from personify.algorithms import create_model

        if len(self.weights) != len(self.components) or not self.components:
            raise ConfigurationError("one weight per component is needed", field="weights",
                                     accepted=f"{len(self.components)} floats")
        if self.normalize not in NORMALIZATIONS:
            raise ConfigurationError(f"unknown normalisation {self.normalize!r}",
                                     field="normalize", accepted=", ".join(NORMALIZATIONS))
        self.models_: list[Recommender] = [
            create_model(name, **params).fit(data) for name, params in self.components
        ]
        self.n_items_ = data.n_items
        return self

    def component_scores(self, user_indices: IdArray, history: sp.csr_matrix | None = None
                         ) -> list[NDArray[np.float32]]:
        """Each component's normalised scores (for fast weight search on a validation split)."""
        self.check_fitted()
        return [normalize_rows(m.score(user_indices, history), self.normalize)
                for m in self.models_]

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        parts = self.component_scores(user_indices, history)
        out = np.zeros_like(parts[0])
        for weight, part in zip(self.weights, parts, strict=True):
            if weight:
                out += np.float32(weight) * part
        return out

    def similar_items(self, item_indices: IdArray | list[int], n: int = 10
                      ) -> tuple[IdArray, ScoreArray]:
        """Delegated to the highest-weighted component that offers item similarity."""
        self.check_fitted()
        order = np.argsort(-np.asarray(self.weights))
        for k in order:
            try:
                return self.models_[k].similar_items(item_indices, n)
            except NotImplementedError:
                continue
        raise NotImplementedError("no component provides similar_items")
