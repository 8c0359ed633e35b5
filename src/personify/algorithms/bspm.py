"""BSPM: blurring-sharpening process model (Choi et al., SIGIR 2023), training-free.

Formulation (as in the authors' reference code, ``BSPM`` / ``BSPM_TORCH``)::

    R~   = D_u^-1/2 X D_i^-1/2                      (gfcf.normalized_matrix)
    P~   = R~^T R~                                  (items x items, never materialised:
                                                     s P~ is computed as (s R~^T) R~)
    idl  = x D_i^-1/2 V_k^T V_k D_i^1/2             (ideal low-pass, top ``factor_dim`` right
                                                     singular vectors of R~, as GF-CF)
    blur:    ds/dt = s P~ - s   (heat equation, s(0) = x),  Euler, ``K_b`` steps up to ``T_b``
    sharpen: ds/dt = -s P~      (reverse direction),        ``solver`` ('rk4' or 'euler'),
                                                             ``K_s`` steps up to ``T_s``

``merge="early"`` (the paper's BSPM-EM, the reference command for Gowalla:
``--solver_shr rk4 --K_s 1 --T_s 2.5 --final_sharpening True --idl_beta 0.2 --factor_dim 448``)
sharpens ``blur(T_b) + idl_beta * idl`` and returns the sharpened signal; ``merge="late"``
(BSPM-LM) sharpens ``blur(T_b)`` alone and returns ``sharpened + idl_beta * idl``. Both
processes are linear, so one RK4 step of length ``h`` multiplies by
``I - hP~ + (hP~)^2/2 - (hP~)^3/6 + (hP~)^4/24`` and one Euler blur step of length 1 gives
``x P~`` (GF-CF's linear filter). ``t_point_combination`` averages the blurred signal and every
sharpening step's output instead of taking the last one (the authors' option for Yelp).

Scoring a batch of ``b`` users costs ``(K_b + (4 if rk4 else 1) * K_s)`` products with ``P~``, each
two sparse x dense products with ``R~`` (``2 * nnz * b`` multiply-adds), plus the low-pass
``b x factor_dim x n_items`` dense product; the fitted state is ``R~`` and ``V_k`` only.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms._sparse import history_rows, positive_matrix
from personify.algorithms.base import IdArray, Recommender, ScoreArray, top_n
from personify.algorithms.gfcf import normalized_matrix, top_right_singular_vectors
from personify.data.interactions import Interactions
from personify.domain.errors import ConfigurationError

SOLVERS = ("rk4", "euler")
MERGES = ("early", "late")


class BSPM(Recommender):
    """Blur (heat equation with ``P~``), sharpen (reverse), plus an ideal low-pass term."""

    name: ClassVar[str] = "bspm"
    fitted_attribute: ClassVar[str] = "norm_"

    def __init__(
        self,
        factor_dim: int = 448,
        idl_beta: float = 0.2,
        *,
        T_b: float = 1.0,  # the paper's parameter names
        K_b: int = 1,
        T_s: float = 2.5,
        K_s: int = 1,
        solver: str = "rk4",
        merge: str = "early",
        t_point_combination: bool = False,
        svd_iterations: int = 6,
        seed: int = 0,
    ) -> None:
        self.factor_dim = factor_dim
        self.idl_beta = idl_beta
        self.T_b = T_b
        self.K_b = K_b
        self.T_s = T_s
        self.K_s = K_s
        self.solver = solver
        self.merge = merge
        self.t_point_combination = t_point_combination
        self.svd_iterations = svd_iterations
        self.seed = seed

    def _validate(self) -> None:
        if self.solver not in SOLVERS:
            raise ConfigurationError(f"unknown solver {self.solver!r}", field="solver",
                                     accepted=", ".join(SOLVERS))
        if self.merge not in MERGES:
            raise ConfigurationError(f"unknown merge {self.merge!r}", field="merge",
                                     accepted=", ".join(MERGES))
        for field, steps in (("K_b", self.K_b), ("K_s", self.K_s)):
            if int(steps) != steps or steps < 1:
                raise ConfigurationError(f"{field} must be a positive integer", field=field,
                                         accepted="an integer >= 1")
        for field, value in (("T_b", self.T_b), ("T_s", self.T_s)):
            if not np.isfinite(value) or value < 0:
                raise ConfigurationError(f"{field} must be >= 0", field=field,
                                         accepted="a finite float >= 0")
        if self.idl_beta != 0 and self.factor_dim < 1:
            raise ConfigurationError("factor_dim must be positive", field="factor_dim",
                                     accepted="an integer >= 1, or idl_beta=0")

    def fit(self, data: Interactions) -> Self:
        self._validate()
        x = positive_matrix(data, binary=True)
        n_users, n_items = x.shape
        norm, di_s = normalized_matrix(x)
        k = min(self.factor_dim, min(n_users, n_items) - 1)
        if self.idl_beta != 0 and k > 0:
            self.vt_: NDArray[np.float32] = top_right_singular_vectors(
                norm, k, n_iter=self.svd_iterations, seed=self.seed)
        else:
            self.vt_ = np.zeros((0, n_items), dtype=np.float32)
        self.normT_: sp.csr_matrix = sp.csr_matrix(norm.T, dtype=np.float32)
        self.di_inv_sqrt_ = di_s.astype(np.float32)
        self.di_sqrt_ = np.divide(1.0, di_s, out=np.zeros_like(di_s), where=di_s > 0
                                  ).astype(np.float32)
        self.X_ = x
        self.n_items_ = n_items
        self.norm_: sp.csr_matrix = norm
        return self

    # --- building blocks, all in "transposed space": signals are (n_items, batch) arrays ---

    def apply_filter(self, s: NDArray[np.float32]) -> NDArray[np.float32]:
        """``P~`` applied to column signals: ``R~^T (R~ s)`` (never forms ``P~``)."""
        return np.asarray(self.normT_ @ (self.norm_ @ s), dtype=np.float32)

    def ideal_low_pass(self, rows: sp.csr_matrix, n_factors: int | None = None
                       ) -> NDArray[np.float32]:
        """``(x D_i^-1/2 V_k^T V_k D_i^1/2)^T`` for history ``rows``, ``k = n_factors`` (a
        prefix of the fitted singular vectors; default all of them)."""
        vt = self.vt_ if n_factors is None else self.vt_[:n_factors]
        low = np.asarray((rows @ sp.diags(self.di_inv_sqrt_)) @ vt.T, dtype=np.float32)
        return (vt.T @ low.T) * self.di_sqrt_[:, None]

    def blur(self, s: NDArray[np.float32]) -> NDArray[np.float32]:
        """Euler steps of ``ds/dt = s P~ - s`` up to ``T_b``."""
        h = np.float32(self.T_b / self.K_b)
        if h == 0:
            return s
        for _ in range(int(self.K_b)):
            s = s + h * (self.apply_filter(s) - s)
        return s

    def sharpen(self, s: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        """Steps of ``ds/dt = -s P~`` up to ``T_s``: the signal after each step (none when
        ``T_s = 0``)."""
        h = np.float32(self.T_s / self.K_s)
        out: list[NDArray[np.float32]] = []
        if h == 0:
            return out
        for _ in range(int(self.K_s)):
            if self.solver == "euler":
                s = s - h * self.apply_filter(s)
            else:
                k1 = -self.apply_filter(s)
                k2 = -self.apply_filter(s + (h / 2) * k1)
                k3 = -self.apply_filter(s + (h / 2) * k2)
                k4 = -self.apply_filter(s + h * k3)
                s = s + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
            out.append(s)
        return out

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        self.check_fitted()
        rows = history_rows(self.X_, np.asarray(user_indices), history, binary=True)
        x_t = np.ascontiguousarray(rows.T.toarray(), dtype=np.float32)
        blurred = self.blur(x_t)
        del x_t
        idl = None
        if self.idl_beta != 0 and len(self.vt_):
            idl = np.float32(self.idl_beta) * self.ideal_low_pass(rows)
        start = blurred + idl if (idl is not None and self.merge == "early") else blurred
        steps = self.sharpen(start)
        if self.t_point_combination and steps:
            out = (blurred + sum(steps)) / np.float32(1 + len(steps))
        else:
            out = steps[-1] if steps else start
        if idl is not None and self.merge == "late":
            out = out + idl
        return np.ascontiguousarray(out.T, dtype=np.float32)

    def similar_items(self, item_indices: IdArray | list[int], n: int = 10
                      ) -> tuple[IdArray, ScoreArray]:
        """The items the whole model (blur, low-pass, sharpening) scores highest for a history
        of item ``i`` alone: row ``i`` of BSPM's operator, which is linear in the history. These
        rows are what the serving bundle keeps (``personify train --model bspm``) to fold live
        histories through; truncated to the top 200 they scored 0.1888 / 0.1583 Recall / NDCG@20
        on Gowalla against 0.1919 / 0.1604 for the full model (docs/benchmarks/gowalla.md)."""
        self.check_fitted()
        items = np.asarray(item_indices, dtype=np.int64)
        eye = sp.csr_matrix(
            (np.ones(items.size, dtype=np.float32), (np.arange(items.size), items)),
            shape=(items.size, self.n_items_),
        )
        dense = np.asarray(self.score(items, history=eye), dtype=np.float32)
        dense[dense <= 0] = -np.inf
        dense[np.arange(items.size), items] = -np.inf
        return top_n(dense, n)


__all__ = ["BSPM"]
