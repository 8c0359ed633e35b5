"""GF-CF: a training-free graph filter (Shen et al., CIKM 2021).

With ``R~ = D_u^-1/2 X D_i^-1/2`` the scores are ``linear_weight * x_u R~^T R~`` (a
normalised item-item linear filter) plus ``alpha * x_u D_i^-1/2 V_k^T V_k D_i^1/2`` (an ideal
low-pass filter on the top ``n_factors`` right singular vectors of ``R~``). ``topk`` optionally
prunes the item-item filter per item.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
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


def _inv_sqrt(values: NDArray[Any]) -> NDArray[np.float32]:
    values = np.asarray(values, dtype=np.float64).ravel()
    out = np.divide(1.0, np.sqrt(values), out=np.zeros_like(values), where=values > 0)
    return out.astype(np.float32)


def normalized_matrix(x: sp.csr_matrix, user_exponent: float = 0.5, item_exponent: float = 0.5
                      ) -> tuple[sp.csr_matrix, NDArray[np.float64]]:
    """``R~ = D_u^-user_exponent X D_i^-item_exponent`` (float32 CSR) and the item scaling
    ``D_i^-item_exponent`` (zero for items without interactions)."""
    du = np.asarray(x.sum(axis=1), dtype=np.float64).ravel()
    di = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
    du_s = np.divide(1.0, du ** user_exponent, out=np.zeros_like(du), where=du > 0)
    di_s = np.divide(1.0, di ** item_exponent, out=np.zeros_like(di), where=di > 0)
    norm = sp.csr_matrix(sp.diags(du_s.astype(np.float32)) @ x
                         @ sp.diags(di_s.astype(np.float32)), dtype=np.float32)
    return norm, di_s


def top_right_singular_vectors(norm: sp.spmatrix, k: int, *, n_iter: int = 6, seed: int = 0
                               ) -> NDArray[np.float32]:
    """The top ``k`` right singular vectors (rows, largest singular value first): randomised
    SVD (scikit-learn, fast) when installed, else ARPACK."""
    try:
        from sklearn.utils.extmath import randomized_svd
    except ImportError:  # pragma: no cover - depends on the install
        v0 = np.random.default_rng(seed).random(min(norm.shape))
        _, s, vt = spla.svds(norm.astype(np.float64), k=k, v0=v0)
        return np.asarray(vt[np.argsort(-s)], dtype=np.float32)
    _, _, vt = randomized_svd(norm, k, n_iter=n_iter, random_state=seed)
    return np.asarray(vt, dtype=np.float32)


class GFCF(Recommender):
    """Normalised item-item linear filter + ideal low-pass filter (no training loop)."""

    name: ClassVar[str] = "gfcf"
    fitted_attribute: ClassVar[str] = "P_"

    def __init__(
        self,
        alpha: float = 0.3,
        n_factors: int = 256,
        *,
        linear_weight: float = 1.0,
        svd_iterations: int = 6,
        topk: int | None = None,
        user_exponent: float = 0.5,
        item_exponent: float = 0.5,
        seed: int = 0,
        block_size: int = 1024,
    ) -> None:
        self.alpha = alpha
        self.n_factors = n_factors
        self.linear_weight = linear_weight
        self.svd_iterations = svd_iterations
        self.topk = topk
        self.user_exponent = user_exponent
        self.item_exponent = item_exponent
        self.seed = seed
        self.block_size = block_size

    def fit(self, data: Interactions) -> Self:
        x = positive_matrix(data, binary=True)
        n_users, n_items = x.shape
        norm, di_s = normalized_matrix(x, self.user_exponent, self.item_exponent)
        if self.topk is None:
            p = sp.csr_matrix(norm.T @ norm, dtype=np.float32)
        else:
            p = blockwise_topk(sp.csr_matrix(norm.T), sp.csc_matrix(norm),
                               lambda d, _rows: d, self.topk, block_size=self.block_size)
        self.P_: sp.csr_matrix = p
        k = min(self.n_factors, min(n_users, n_items) - 1)
        if self.alpha != 0 and k > 0:
            if self.n_factors <= 0:
                raise ConfigurationError("n_factors must be positive", field="n_factors",
                                         accepted="an integer >= 1, or alpha=0")
            self.vt_: NDArray[np.float32] = self._top_right_singular_vectors(norm, k)
        else:
            self.vt_ = np.zeros((0, n_items), dtype=np.float32)
        self.di_inv_sqrt_ = di_s.astype(np.float32)
        self.di_sqrt_ = np.divide(1.0, di_s, out=np.zeros_like(di_s), where=di_s > 0
                                  ).astype(np.float32)
        self.X_ = x
        self.n_items_ = n_items
        return self

    def _top_right_singular_vectors(self, norm: sp.csr_matrix, k: int) -> NDArray[np.float32]:
        return top_right_singular_vectors(norm, k, n_iter=self.svd_iterations, seed=self.seed)

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        self.check_fitted()
        rows = history_rows(self.X_, np.asarray(user_indices), history, binary=True)
        out = np.asarray((rows @ self.P_).toarray(), dtype=np.float32)
        if self.linear_weight != 1.0:
            out *= np.float32(self.linear_weight)
        if self.alpha != 0 and len(self.vt_):
            low = (rows @ sp.diags(self.di_inv_sqrt_)) @ self.vt_.T
            out += self.alpha * ((low @ self.vt_) * self.di_sqrt_[None, :])
        return out

    def similar_items(self, item_indices: IdArray | list[int], n: int = 10
                      ) -> tuple[IdArray, ScoreArray]:
        self.check_fitted()
        return similar_from_rows(self.P_, np.asarray(item_indices, dtype=np.int64), n)
