"""Implicit ALS (Hu, Koren, Volinsky 2008) through the ``implicit`` library (CPU).

Confidence is ``1 + alpha * w`` where ``w`` is the summed event weight (``EventWeights``: a
purchase counts more than a view; negative weights are dropped), optionally transformed first:
``weight_transform="log"`` uses ``log(1 + w)``, ``"cap"`` clips ``w`` at ``weight_cap`` (default:
the 95th percentile of the training weights), so raw counts (plays in the hundreds of
thousands) do not swamp the confidence; ``personify train``'s selection chooses on validation.
Recommends in the Personify index space and folds in new histories with ``implicit``'s
``recalculate_user``.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms._sparse import positive_matrix
from personify.algorithms.base import IdArray, Recommender, ScoreArray, top_n
from personify.data.interactions import Interactions
from personify.domain.errors import ConfigurationError, Unavailable

WEIGHT_TRANSFORMS = ("none", "log", "cap")


def _implicit_als() -> Any:
    try:
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise Unavailable("ALS needs the 'implicit' library", field="model",
                          accepted="pip install 'personify[train]'") from exc
    return AlternatingLeastSquares


class ALS(Recommender):
    """Weighted matrix factorisation for implicit feedback."""

    name: ClassVar[str] = "als"
    fitted_attribute: ClassVar[str] = "item_factors_"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        *,
        binary: bool = False,
        seed: int = 0,
        num_threads: int = 0,
        weight_transform: str = "none",
        weight_cap: float | None = None,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.binary = binary
        self.seed = seed
        self.num_threads = num_threads
        self.weight_transform = weight_transform
        self.weight_cap = weight_cap

    def _threads(self) -> int:
        return self.num_threads or min(os.cpu_count() or 1, 4)

    def _model(self) -> Any:
        from threadpoolctl import threadpool_limits

        cls = _implicit_als()
        with threadpool_limits(1, "blas"):
            return cls(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=self._threads(),
                dtype=np.float32,
            )

    def fit(self, data: Interactions) -> Self:
        from threadpoolctl import threadpool_limits

        if self.weight_transform not in WEIGHT_TRANSFORMS:
            raise ConfigurationError(
                f"unknown weight transform {self.weight_transform!r}",
                field="weight_transform", accepted=", ".join(WEIGHT_TRANSFORMS),
            )
        x = sp.csr_matrix(positive_matrix(data, binary=self.binary))
        self.cap_ = float(self.weight_cap) if self.weight_cap is not None else (
            float(np.quantile(x.data, 0.95)) if x.nnz else 1.0
        )
        x = self._transformed(x)
        model = self._model()
        with threadpool_limits(1, "blas"):
            model.fit(x, show_progress=False)
        self.user_factors_: NDArray[np.float32] = np.asarray(model.user_factors, np.float32)
        self.item_factors_: NDArray[np.float32] = np.asarray(model.item_factors, np.float32)
        self.X_ = x
        self.n_items_ = x.shape[1]
        return self

    def _transformed(self, x: sp.csr_matrix) -> sp.csr_matrix:
        """The weights as the confidence sees them (``weight_transform``)."""
        if self.binary or self.weight_transform == "none":
            return x
        x = x.copy()
        if self.weight_transform == "log":
            x.data = np.log1p(x.data).astype(np.float32)
        else:
            x.data = np.minimum(x.data, getattr(self, "cap_", self.weight_cap or np.inf))
        return x

    def user_vectors(self, user_indices: IdArray, history: sp.csr_matrix | None = None
                     ) -> NDArray[np.float32]:
        """Factors of the given users; with ``history`` they are recomputed (fold-in)."""
        self.check_fitted()
        users = np.asarray(user_indices, dtype=np.int64)
        if history is None:
            return self.user_factors_[users]
        from threadpoolctl import threadpool_limits

        rows = sp.csr_matrix(history, dtype=np.float32, copy=True)
        rows.data[rows.data < 0] = 0
        rows.eliminate_zeros()
        if self.binary:
            rows.data[:] = 1.0
        rows = self._transformed(rows)
        model = self._model()
        model.user_factors = self.user_factors_
        model.item_factors = self.item_factors_
        with threadpool_limits(1, "blas"):
            vectors = model.recalculate_user(np.arange(len(users)), rows)
        return np.asarray(vectors, dtype=np.float32).reshape(len(users), -1)

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        return self.user_vectors(user_indices, history) @ self.item_factors_.T

    def similar_items(self, item_indices: IdArray | list[int], n: int = 10
                      ) -> tuple[IdArray, ScoreArray]:
        """Cosine similarity of item factors."""
        self.check_fitted()
        items = np.asarray(item_indices, dtype=np.int64)
        norms = np.linalg.norm(self.item_factors_, axis=1) + 1e-12
        unit = self.item_factors_ / norms[:, None]
        scores = unit[items] @ unit.T
        scores[np.arange(len(items)), items] = -np.inf
        return top_n(scores, n)
