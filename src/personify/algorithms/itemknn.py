"""Item-based nearest neighbours: co-occurrence, cosine or asymmetric cosine with shrinkage.

``W[i, j]`` = ``c_ij / (n_i^alpha * n_j^(1 - alpha) + shrink)`` (``alpha = 0.5`` is cosine; the
co-occurrence variant uses ``c_ij`` alone), keeping each target item's ``k`` nearest neighbours.
Built block by block, so memory is ``O(block x n_items + n_items x k)``; scores are ``X_u W``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms._sparse import (
    blockwise_topk,
    history_rows,
    positive_matrix,
    similar_from_rows,
)
from personify.algorithms.base import IdArray, Recommender, ScoreArray
from personify.data.interactions import Interactions
from personify.domain.errors import ConfigurationError

SIMILARITIES = ("cosine", "asymmetric", "cooccurrence")


class ItemKNN(Recommender):
    """Top-``k`` item-item neighbourhood model over the (binarised) interaction matrix."""

    name: ClassVar[str] = "itemknn"
    fitted_attribute: ClassVar[str] = "W_"

    def __init__(
        self,
        k: int = 100,
        shrink: float = 10.0,
        *,
        similarity: Literal["cosine", "asymmetric", "cooccurrence"] = "cosine",
        alpha: float = 0.5,
        binary: bool = True,
        block_size: int = 1024,
    ) -> None:
        self.k = k
        self.shrink = shrink
        self.similarity = similarity
        self.alpha = alpha
        self.binary = binary
        self.block_size = block_size

    def fit(self, data: Interactions) -> Self:
        if self.similarity not in SIMILARITIES:
            raise ConfigurationError(f"unknown similarity {self.similarity!r}",
                                     field="similarity", accepted=", ".join(SIMILARITIES))
        if self.k <= 0:
            raise ConfigurationError(f"k must be positive, got {self.k}", field="k",
                                     accepted="an integer >= 1")
        x = positive_matrix(data, binary=self.binary)
        norms = np.asarray(x.multiply(x).sum(axis=0)).ravel().astype(np.float32)
        alpha = 0.5 if self.similarity == "cosine" else self.alpha

        def transform(dense: NDArray[np.float32], rows: slice) -> NDArray[np.float32]:
            # dense[j, i] = c_ji for target items j in ``rows``; result is W^T rows.
            targets = np.arange(rows.start, rows.stop)
            if self.similarity != "cooccurrence":
                denom = (norms[None, :] ** alpha) * (norms[targets, None] ** (1 - alpha))
                dense = (dense / (denom + self.shrink + 1e-12)).astype(np.float32)
            dense[np.arange(len(targets)), targets] = 0.0
            return dense

        wt = blockwise_topk(sp.csr_matrix(x.T), sp.csc_matrix(x), transform, self.k,
                            block_size=self.block_size)
        self.WT_: sp.csr_matrix = wt
        self.W_: sp.csr_matrix = sp.csr_matrix(wt.T)
        self.X_ = x
        self.n_items_ = x.shape[1]
        return self

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        self.check_fitted()
        rows = history_rows(self.X_, np.asarray(user_indices), history, binary=self.binary)
        return np.asarray((rows @ self.W_).toarray(), dtype=np.float32)

    def similar_items(self, item_indices: IdArray | list[int], n: int = 10
                      ) -> tuple[IdArray, ScoreArray]:
        self.check_fitted()
        return similar_from_rows(self.WT_, np.asarray(item_indices, dtype=np.int64), n)
