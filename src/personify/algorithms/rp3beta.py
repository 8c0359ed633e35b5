"""RP3beta: a three-step random walk user -> item -> user -> item, popularity-penalised
(Paudel et al. 2017; Dacrema et al. 2019).

``W = (P_iu^alpha P_ui^alpha) / pop_j^beta``, top-``k`` per source item; scores are ``X_u W``.
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms._sparse import (
    blockwise_topk,
    positive_matrix,
    row_normalize,
)
from personify.algorithms.neighbours import ItemNeighbourModel
from personify.data.interactions import Interactions


class RP3beta(ItemNeighbourModel):
    """Graph random-walk item-item model with a popularity penalty ``beta``."""

    name: ClassVar[str] = "rp3beta"

    def __init__(
        self,
        k: int = 200,
        alpha: float = 0.8,
        beta: float = 0.3,
        *,
        binary: bool = True,
        block_size: int = 1024,
    ) -> None:
        self.k = k
        self.alpha = alpha
        self.beta = beta
        self.binary = binary
        self.block_size = block_size

    def fit(self, data: Interactions) -> Self:
        self._check_k()
        x = positive_matrix(data, binary=self.binary)
        p_ui = row_normalize(x)
        p_iu = row_normalize(sp.csr_matrix(x.T))
        if self.alpha != 1.0:
            p_ui = p_ui.power(self.alpha)
            p_iu = p_iu.power(self.alpha)
        pop = np.asarray((x > 0).sum(axis=0)).ravel().astype(np.float32)
        penalty = np.divide(1.0, pop ** self.beta, out=np.zeros_like(pop), where=pop > 0)

        def transform(dense: NDArray[np.float32], rows: slice) -> NDArray[np.float32]:
            dense *= penalty[None, :]
            sources = np.arange(rows.start, rows.stop)
            dense[np.arange(len(sources)), sources] = 0.0
            return dense

        w = blockwise_topk(p_iu, sp.csc_matrix(p_ui), transform, self.k,
                           block_size=self.block_size)
        return self._fitted(w, x)
