"""EASE: the closed-form linear autoencoder (Steck, WWW 2019).

``B = I - P diag(1 / diag(P))`` with ``P = (X^T X + l2 I)^-1``; scores are ``X_u B``.

Memory plan: the dense Gram matrix and its inverse are ``n_items^2`` floats. With ``float32``
the SciPy backend inverts in place (about ``n_items^2 x 4`` bytes, e.g. 6.7 GB for 41k items);
PyTorch (used above 32k items when installed) peaks at two such matrices
(``~2 x n_items^2 x 4`` bytes, 13.4 GB for 41k items). ``fit`` refuses with a clear error when the
plan exceeds ``memory_budget_gb``; use ItemKNN / RP3beta (sparse, top-k pruned) instead then.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms import _dense_inverse
from personify.algorithms._sparse import history_rows, positive_matrix, similar_from_rows
from personify.algorithms.base import IdArray, Recommender, ScoreArray
from personify.data.interactions import Interactions
from personify.domain.errors import ConfigurationError, LimitExceeded


def ease_memory_bytes(n_items: int, dtype: str = "float32", backend: str = "auto") -> int:
    """Bytes the fit holds at its peak for ``n_items`` (dense matrices only)."""
    size = np.dtype(dtype).itemsize
    copies = _dense_inverse.matrices_needed(n_items, backend)  # type: ignore[arg-type]
    return copies * n_items * n_items * size


class EASE(Recommender):
    """Embarrassingly shallow autoencoder over the binarised (or weighted) interaction matrix."""

    name: ClassVar[str] = "ease"
    fitted_attribute: ClassVar[str] = "B_"

    def __init__(
        self,
        l2: float = 500.0,
        *,
        binary: bool = True,
        dtype: Literal["float32", "float64"] = "float32",
        backend: Literal["auto", "scipy", "torch", "numpy"] = "auto",
        memory_budget_gb: float = 8.0,
        block_size: int = 4096,
    ) -> None:
        self.l2 = l2
        self.binary = binary
        self.dtype = dtype
        self.backend = backend
        self.memory_budget_gb = memory_budget_gb
        self.block_size = block_size

    def fit(self, data: Interactions) -> Self:
        if self.l2 <= 0:
            raise ConfigurationError(f"l2 must be positive, got {self.l2}", field="l2",
                                     accepted="a positive float, e.g. 100-1000")
        if self.dtype not in ("float32", "float64"):
            raise ConfigurationError(f"unknown dtype {self.dtype!r}", field="dtype",
                                     accepted="float32, float64")
        x = positive_matrix(data, binary=self.binary)
        n = x.shape[1]
        need = ease_memory_bytes(n, self.dtype, self.backend)
        if need > self.memory_budget_gb * 1e9:
            raise LimitExceeded(
                f"EASE on {n} items needs about {need / 1e9:.1f} GB "
                f"({_dense_inverse.matrices_needed(n, self.backend)} x {n}^2 {self.dtype}), over "
                f"the memory budget of {self.memory_budget_gb} GB",
                field="memory_budget_gb",
                accepted=f">= {need / 1e9:.1f}, or a sparse model such as 'itemknn' / "
                "'rp3beta' (top-k pruned), or fewer items (prune rare ones)",
            )
        gram = self._gram(x)
        gram[np.diag_indices(n)] += self.l2
        p = _dense_inverse.inverse_spd_inplace(gram, self.backend)
        del gram
        diag = np.diag(p).copy()
        for start in range(0, n, self.block_size):  # B = -P / diag(P) column-wise, in place
            rows = slice(start, min(start + self.block_size, n))
            p[rows] /= -diag[None, :]
        p[np.diag_indices(n)] = 0.0
        self.B_: NDArray[Any] = p
        self.X_ = x
        self.n_items_ = n
        return self

    def _gram(self, x: sp.csr_matrix) -> NDArray[Any]:
        """Dense ``X^T X`` built block by block (no full sparse product in memory)."""
        n = x.shape[1]
        gram = np.empty((n, n), dtype=self.dtype)
        xt = sp.csr_matrix(x.T, dtype=self.dtype)
        xc = sp.csc_matrix(x, dtype=self.dtype)
        step = max(1, min(self.block_size, 1024))
        for start in range(0, n, step):
            cols = slice(start, min(start + step, n))
            gram[:, cols] = xt @ xc[:, cols].toarray()
        return gram

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        self.check_fitted()
        rows = history_rows(self.X_, np.asarray(user_indices), history, binary=self.binary)
        return np.asarray(rows.astype(self.B_.dtype) @ self.B_)

    def similar_items(self, item_indices: IdArray | list[int], n: int = 10
                      ) -> tuple[IdArray, ScoreArray]:
        self.check_fitted()
        return similar_from_rows(self.B_, np.asarray(item_indices, dtype=np.int64), n)
