"""EASE: the closed-form linear autoencoder (Steck, WWW 2019).

``B = I - P diag(1 / diag(P))`` with ``P = (X^T X + l2 I)^-1``; scores are ``X_u B``.

With fewer (active) users than items, ``P`` comes from the Woodbury identity instead,
``P = (I - X^T (l2 I + X X^T)^-1 X) / l2``: a users x users solve in place of the items x items
inverse (the same matrix up to rounding; ``solver="woodbury"``, chosen by ``auto`` then).

Memory plan: the dense Gram matrix and its inverse are ``n_items^2`` floats. With ``float32``
the SciPy backend inverts in place (about ``n_items^2 x 4`` bytes, e.g. 6.7 GB for 41k items);
PyTorch (used above 32k items when installed) peaks at two such matrices
(``~2 x n_items^2 x 4`` bytes, 13.4 GB for 41k items). ``fit`` refuses with a clear error when the
plan exceeds ``memory_budget_gb``; use ItemKNN / RP3beta (sparse, top-k pruned) instead then.

Removing training rows ``R`` (people, binarised) is a low-rank change of the Gram matrix,
``X'^T X' = X^T X - R^T R``, so the inverse follows exactly without a refit (Woodbury):
``P' = P + P R^T (I - R P R^T)^-1 R P`` (:func:`downdate_inverse`, ``O(n_items^2 r)`` for ``r``
rows, only the rows of ``P`` at the items ``R`` touches are read to set it up). ``fit`` keeps
``diag(P)`` (``p_diag_``), so ``P`` itself can be rebuilt from the weights
(:func:`inverse_from_weights`) when it must be kept for that.
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


def ease_memory_bytes(n_items: int, dtype: str = "float32", backend: str = "auto",
                      n_users: int | None = None) -> int:
    """Bytes the fit holds at its peak for ``n_items`` (dense matrices only); with ``n_users``
    below ``n_items`` the Woodbury form's (items^2 in ``dtype``, users^2 and a users x 1,024
    column block in float64)."""
    size = np.dtype(dtype).itemsize
    if n_users is not None and n_users < n_items:  # P, the float64 kernel, a column block
        return n_items * n_items * size + (n_users * n_users + n_users * 1024) * 8
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
        solver: Literal["auto", "gram", "woodbury"] = "auto",
    ) -> None:
        self.l2 = l2
        self.binary = binary
        self.dtype = dtype
        self.backend = backend
        self.memory_budget_gb = memory_budget_gb
        self.block_size = block_size
        self.solver = solver

    def fit(self, data: Interactions) -> Self:
        if self.l2 <= 0:
            raise ConfigurationError(f"l2 must be positive, got {self.l2}", field="l2",
                                     accepted="a positive float, e.g. 100-1000")
        if self.dtype not in ("float32", "float64"):
            raise ConfigurationError(f"unknown dtype {self.dtype!r}", field="dtype",
                                     accepted="float32, float64")
        if self.solver not in ("auto", "gram", "woodbury"):
            raise ConfigurationError(f"unknown solver {self.solver!r}", field="solver",
                                     accepted="auto, gram, woodbury")
        x = positive_matrix(data, binary=self.binary)
        n = x.shape[1]
        active = x[np.flatnonzero(np.diff(x.indptr))]
        woodbury = self.solver == "woodbury" or (
            self.solver == "auto" and active.shape[0] < n
        )
        need = ease_memory_bytes(n, self.dtype, self.backend,
                                 active.shape[0] if woodbury else None)
        if need > self.memory_budget_gb * 1e9:
            raise LimitExceeded(
                f"EASE on {n} items needs about {need / 1e9:.1f} GB "
                f"({_dense_inverse.matrices_needed(n, self.backend)} x {n}^2 {self.dtype}), over "
                f"the memory budget of {self.memory_budget_gb} GB",
                field="memory_budget_gb",
                accepted=f">= {need / 1e9:.1f}, or a sparse model such as 'itemknn' / "
                "'rp3beta' (top-k pruned), or fewer items (prune rare ones)",
            )
        if woodbury:
            p = self._woodbury(active)
        else:
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
        self.p_diag_: NDArray[Any] = diag
        self.X_ = x
        self.n_items_ = n
        return self

    def _woodbury(self, x: sp.csr_matrix) -> NDArray[Any]:
        """``(X^T X + l2 I)^-1`` as ``(I - X^T (l2 I + X X^T)^-1 X) / l2`` for the active rows
        ``x`` (users x items, fewer users than items)."""
        import scipy.linalg

        n = x.shape[1]
        kernel = np.asarray((x @ x.T).toarray(), dtype=np.float64)
        kernel[np.diag_indices(kernel.shape[0])] += self.l2
        factor = scipy.linalg.cho_factor(kernel, overwrite_a=True, check_finite=False)
        del kernel
        xt = x.T.tocsr().astype(self.dtype)
        xc = sp.csc_matrix(x, dtype=np.float64)
        p = np.empty((n, n), dtype=self.dtype)
        step = max(1, min(self.block_size, 1024))
        for start in range(0, n, step):  # P[:, block] = X^T K^-1 X[:, block], bounded memory
            cols = slice(start, min(start + step, n))
            solved = scipy.linalg.cho_solve(factor, xc[:, cols].toarray(), overwrite_b=True,
                                            check_finite=False)
            p[:, cols] = xt @ solved.astype(self.dtype)
        del factor, solved
        p /= -self.l2
        p[np.diag_indices(n)] += 1.0 / self.l2
        return p

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


def _block_rows(n: int, cells: int = 4_000_000) -> int:
    """Rows per block so that one float64 block of ``n`` columns stays near ``cells`` cells."""
    return max(1, min(n, cells // max(1, n)))


def inverse_from_weights(weights: NDArray[Any], p_diag: NDArray[Any], out: NDArray[Any]
                         ) -> NDArray[Any]:
    """``P`` rebuilt from a fitted EASE's ``B_`` and ``p_diag_`` into ``out`` (an array or a
    memory map of the same shape), block by block: ``P_ij = -B_ij P_jj`` off the diagonal."""
    n = weights.shape[0]
    step = _block_rows(n)
    for start in range(0, n, step):
        stop = min(start + step, n)
        block = np.multiply(weights[start:stop], -p_diag[None, :]).astype(out.dtype, copy=False)
        idx = np.arange(start, stop)
        block[idx - start, idx] = p_diag[idx]
        out[start:stop] = block
    return out


def downdate_inverse(p: NDArray[Any], removed: sp.csr_matrix, out: NDArray[Any]) -> None:
    """Write ``(X^T X - R^T R + l2 I)^-1`` into ``out`` from ``p = (X^T X + l2 I)^-1`` and the
    removed rows ``R`` (rows x items, the very values the fit saw): the Woodbury identity
    ``P + (R P)^T (I - R P R^T)^-1 (R P)``, in float64, ``out`` written block by block
    (``out`` may be a memory map; ``p`` is read, never written, unless it is ``out``)."""
    import scipy.linalg

    n = p.shape[0]
    removed = sp.csr_matrix(removed, dtype=np.float64)
    touched = np.unique(removed.indices)
    part = sp.csr_matrix(removed[:, touched])  # rows x k: only the touched items count
    rp = np.asarray(part @ np.asarray(p[touched], dtype=np.float64))  # R P (P symmetric)
    inner = np.eye(removed.shape[0]) - np.asarray(part @ rp[:, touched].T).T
    # I - R P R^T is positive definite: the Gram matrix without R plus l2 I stays so
    solved = scipy.linalg.solve((inner + inner.T) / 2, rp, assume_a="pos", check_finite=False)
    change = solved.astype(out.dtype)  # the update, added in ``out``'s dtype (one rounding)
    left = rp.astype(out.dtype)
    step = _block_rows(n)
    for start in range(0, n, step):
        stop = min(start + step, n)
        block = np.array(p[start:stop], dtype=out.dtype)  # a copy: ``p`` stays as it is
        block += left[:, start:stop].T @ change
        out[start:stop] = block


def neighbours_from_inverse(p: NDArray[Any], k: int,
                            previous: sp.csr_matrix | None = None) -> sp.csr_matrix:
    """items x items: the top-``k`` positive weights of every row of ``B = -P / diag(P)``
    (zero diagonal), exactly the neighbours ``EASE.fit`` then ``similar_items`` give (ties at
    the k-th value may pick either item).

    ``previous``, the top-``k`` neighbours of a nearby ``P`` (before a downdate), only makes it
    faster: a row's new top-k lies among the entries at least as large as the k-th largest new
    weight of its previous top-k columns (k entries of the row that reach it), so only those
    few candidates are ranked instead of the whole row."""
    from personify.algorithms._sparse import sparse_topk_rows
    from personify.algorithms.base import top_n

    n = p.shape[0]
    diag = np.diagonal(p).copy()
    step = _block_rows(n)
    rows_out, cols_out, vals_out = [], [], []
    for start in range(0, n, step):
        stop = min(start + step, n)
        idx = np.arange(start, stop)
        block = np.array(p[start:stop], dtype=p.dtype)
        block /= -diag[None, :]
        block = block.astype(np.float32, copy=False)
        block[idx - start, idx] = -np.inf
        if previous is not None:
            kept = _candidates(block, sp.csr_matrix(previous[start:stop]), k)
            found = sp.csr_matrix(sparse_topk_rows(kept, k)).tocoo()
            rows_out.append(found.row + start)
            cols_out.append(found.col)
            vals_out.append(found.data)
            continue
        ids, scores = top_n(block, k)
        mask = (ids >= 0) & np.isfinite(scores) & (scores > 0)
        rows_out.append(np.repeat(idx, ids.shape[1]).reshape(ids.shape)[mask])
        cols_out.append(ids[mask])
        vals_out.append(scores[mask])
    return sp.csr_matrix(
        (np.concatenate(vals_out), (np.concatenate(rows_out), np.concatenate(cols_out))),
        shape=(n, n), dtype=np.float32,
    )


def _candidates(block: NDArray[np.float32], previous: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """The positive entries of ``block`` that can be in their row's top-``k``: at least the
    smallest new value at the row's previous top-``k`` columns (when it had ``k``)."""
    counts = np.diff(previous.indptr)
    floor = np.zeros(block.shape[0], dtype=np.float32)
    nonempty = np.flatnonzero(counts > 0)
    if nonempty.size:
        at = block[np.repeat(np.arange(block.shape[0]), counts), previous.indices]
        lowest = np.minimum.reduceat(at, previous.indptr[:-1][nonempty])  # per non-empty row
        full = counts[nonempty] >= k
        floor[nonempty[full]] = lowest[full]
    mask = (block >= floor[:, None]) & (block > 0)
    r, c = np.nonzero(mask)
    return sp.csr_matrix((block[r, c], (r, c)), shape=block.shape, dtype=np.float32)
