"""Item-based nearest neighbours: co-occurrence, cosine or asymmetric cosine with shrinkage.

``W[i, j]`` = ``c_ij / (n_i^alpha * n_j^(1 - alpha) + shrink)`` (``alpha = 0.5`` is cosine; the
co-occurrence variant uses ``c_ij`` alone), keeping each target item's ``k`` nearest neighbours.
Built block by block, so memory is ``O(block x n_items + n_items x k)``; scores are ``X_u W``.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms._sparse import (
    blockwise_topk,
    positive_matrix,
)
from personify.algorithms.neighbours import ItemNeighbourModel
from personify.data.interactions import Interactions
from personify.domain.errors import ConfigurationError

SIMILARITIES = ("cosine", "asymmetric", "cooccurrence")


class ItemKNN(ItemNeighbourModel):
    """Top-``k`` item-item neighbourhood model over the (binarised) interaction matrix."""

    name: ClassVar[str] = "itemknn"

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
        self._check_k()
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
        return self._fitted(sp.csr_matrix(wt.T), x)

    def _similarity_rows(self) -> sp.csr_matrix:
        return self.WT_
