"""RP3beta: a three-step random walk user -> item -> user -> item, popularity-penalised
(Paudel et al. 2017; Dacrema et al. 2019).

``W = (P_iu^alpha P_ui^alpha) / pop_j^beta``, top-``k`` per source item; scores are ``X_u W``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms._sparse import (
    blockwise_topk,
    history_rows,
    positive_matrix,
    row_normalize,
    similar_from_rows,
)
from personify.algorithms.base import IdArray, Recommender, ScoreArray
from personify.data.interactions import Interactions
from personify.domain.errors import ConfigurationError


class RP3beta(Recommender):
    """Graph random-walk item-item model with a popularity penalty ``beta``."""

    name: ClassVar[str] = "rp3beta"
    fitted_attribute: ClassVar[str] = "W_"

    def __init__(
        self,
        k: int = 200,
        alpha: float = 1.0,
        beta: float = 0.5,
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
        if self.k <= 0:
            raise ConfigurationError(f"k must be positive, got {self.k}", field="k",
                                     accepted="an integer >= 1")
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

        self.W_: sp.csr_matrix = blockwise_topk(p_iu, sp.csc_matrix(p_ui), transform, self.k,
                                                block_size=self.block_size)
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
        return similar_from_rows(self.W_, np.asarray(item_indices, dtype=np.int64), n)
