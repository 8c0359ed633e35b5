"""What the item-item models (item-kNN, RP3beta) share: a fitted top-``k`` matrix ``W_``
(source item -> target items), scores ``X_u W`` for a user's stored or given history, and
similar items read from the rows of a similarity matrix."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms._sparse import history_rows, similar_from_rows
from personify.algorithms.base import IdArray, Recommender, ScoreArray
from personify.domain.errors import ConfigurationError


class ItemNeighbourModel(Recommender):
    """Base of the item-item models; subclasses fit ``W_`` and call :meth:`_fitted`."""

    fitted_attribute: ClassVar[str] = "W_"
    k: int
    binary: bool
    W_: sp.csr_matrix
    X_: sp.csr_matrix
    n_items_: int

    def _check_k(self) -> None:
        if self.k <= 0:
            raise ConfigurationError(f"k must be positive, got {self.k}", field="k",
                                     accepted="an integer >= 1")

    def _fitted(self, w: sp.csr_matrix, x: sp.csr_matrix) -> Self:
        self.W_ = w
        self.X_ = x
        self.n_items_ = x.shape[1]
        return self

    def _similarity_rows(self) -> sp.csr_matrix:
        """Row ``i`` holds the items most similar to item ``i``."""
        return self.W_

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        self.check_fitted()
        rows = history_rows(self.X_, np.asarray(user_indices), history, binary=self.binary)
        return np.asarray((rows @ self.W_).toarray(), dtype=np.float32)

    def similar_items(self, item_indices: IdArray | list[int], n: int = 10
                      ) -> tuple[IdArray, ScoreArray]:
        self.check_fitted()
        return similar_from_rows(
            self._similarity_rows(), np.asarray(item_indices, dtype=np.int64), n
        )
