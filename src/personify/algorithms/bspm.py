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

Scoring keeps signals as ``(n_panels, n_items, width)`` stacks of ``width``-column panels: a
panel's two sparse products (``R~ s`` then ``R~^T t``) run on one thread with the small
``n_users x width`` intermediate in cache, and the panels run on a thread pool (scipy's sparse
kernels release the GIL). An RK4 step is evaluated in Horner form (four filter applications,
buffers reused), the first blur step starts from the sparse ``R~ x^T``, and the low-pass is one
``(b x k) x (k x n_items)`` GEMM. On Gowalla (batch 1024, 2 shared cores) this scores ~3x more
users per second than whole-batch products, with the same results up to float32 rounding
(benchmarks/bspm_speed.py, docs/benchmarks/bspm_speed.md).

Scoring a batch of ``b`` users costs ``(K_b + (4 if rk4 else 1) * K_s)`` products with ``P~``, each
two sparse x dense products with ``R~`` (``2 * nnz * b`` multiply-adds), plus the low-pass
``b x factor_dim x n_items`` dense product; the fitted state is ``R~`` and ``V_k`` only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
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
PANEL_WIDTH = 32
"""Users (signal columns) per panel: 32 x 4 bytes per row keeps a panel's user-space
intermediate (``n_users x 32``, 4 MB on Gowalla) in cache (benchmarks/bspm_speed.py)."""

Panels = NDArray[np.float32]
"""A ``(n_items, batch)`` signal as ``(n_panels, n_items, width)``, zero-padded columns."""


def _n_workers() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


@contextmanager
def _pool() -> Iterator[ThreadPoolExecutor | None]:
    """Threads for the panels' sparse products; none on one core."""
    workers = _n_workers()
    if workers < 2:
        yield None
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bspm") as pool:
        yield pool


def _panel_width(batch: int) -> int:
    """``PANEL_WIDTH``, narrower for small batches so that every worker gets a panel."""
    return max(1, min(PANEL_WIDTH, -(-batch // _n_workers())))


def _to_panels(a: NDArray[Any], width: int) -> Panels:
    n, b = a.shape
    n_panels = -(-b // width)
    padded = np.zeros((n, n_panels * width), dtype=np.float32)
    padded[:, :b] = a
    return np.ascontiguousarray(padded.reshape(n, n_panels, width).transpose(1, 0, 2))


def _columns(panels: Panels, b: int) -> NDArray[np.float32]:
    """The ``(n_items, b)`` signal held by ``panels`` (C order)."""
    n_panels, n, width = panels.shape
    return np.ascontiguousarray(panels.transpose(1, 0, 2).reshape(n, n_panels * width)[:, :b])


def _rows(panels: Panels, b: int) -> NDArray[np.float32]:
    """The transposed signal, ``(b, n_items)`` C order, panel by panel."""
    n_panels, n, width = panels.shape
    out = np.empty((n_panels * width, n), dtype=np.float32)
    for p in range(n_panels):
        out[p * width:(p + 1) * width] = panels[p].T
    return out[:b]


def _add_rows(panels: Panels, rows: NDArray[np.float32]) -> None:
    """``panels += rows^T`` in place, for a ``(b, n_items)`` array ``rows``."""
    width = panels.shape[2]
    for p in range(panels.shape[0]):
        block = rows[p * width:(p + 1) * width]
        panels[p, :, :block.shape[0]] += block.T


class _Filter:
    """``P~ = R~^T R~`` applied to panel stacks, one panel per task on the pool."""

    def __init__(self, norm: sp.csr_matrix, norm_t: sp.csr_matrix,
                 pool: ThreadPoolExecutor | None) -> None:
        self.norm = norm
        self.norm_t = norm_t
        self.pool = pool

    def each_panel(self, run: Callable[[int], None], n_panels: int) -> None:
        if self.pool is None or n_panels < 2:
            for p in range(n_panels):
                run(p)
        else:
            list(self.pool.map(run, range(n_panels)))

    def apply(self, s: Panels, out: Panels, scale: float = 1.0, add: Panels | None = None,
              add_scale: float = 1.0) -> Panels:
        """``out = scale * P~ s + add_scale * add`` (``out`` may not be ``s`` or ``add``)."""
        def run(p: int) -> None:
            t = self.norm @ s[p]
            if scale != 1:
                t *= np.float32(scale)
            o = self.norm_t @ t
            if add is not None:
                o += add[p] if add_scale == 1 else np.float32(add_scale) * add[p]
            out[p] = o

        self.each_panel(run, s.shape[0])
        return out

    def apply_to_histories(self, rows: sp.csr_matrix, width: int, scale: float,
                           add_scale: float) -> Panels:
        """``scale * P~ x^T + add_scale * x^T`` for sparse histories ``rows`` (``b x n_items``):
        ``R~ x^T`` is sparse x sparse, so the dense history is never multiplied."""
        b, n = rows.shape
        out = np.zeros((-(-b // width), n, width), dtype=np.float32)

        def run(p: int) -> None:
            x_t = sp.csr_matrix(rows[p * width:(p + 1) * width].T)
            t = np.asarray((self.norm @ x_t).toarray(), dtype=np.float32)
            if scale != 1:
                t *= np.float32(scale)
            o = self.norm_t @ t
            if add_scale != 0:
                o += np.float32(add_scale) * x_t.toarray()
            out[p, :, :x_t.shape[1]] = o

        self.each_panel(run, out.shape[0])
        return out


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

    def _filter(self, pool: ThreadPoolExecutor | None) -> _Filter:
        return _Filter(self.norm_, self.normT_, pool)

    def apply_filter(self, s: NDArray[np.float32]) -> NDArray[np.float32]:
        """``P~`` applied to column signals: ``R~^T (R~ s)`` (never forms ``P~``)."""
        panels = _to_panels(s, _panel_width(s.shape[1]))
        with _pool() as pool:
            out = self._filter(pool).apply(panels, np.empty_like(panels))
        return _columns(out, s.shape[1])

    def ideal_low_pass(self, rows: sp.csr_matrix, n_factors: int | None = None
                       ) -> NDArray[np.float32]:
        """``(x D_i^-1/2 V_k^T V_k D_i^1/2)^T`` for history ``rows``, ``k = n_factors`` (a
        prefix of the fitted singular vectors; default all of them)."""
        return np.ascontiguousarray(self._low_pass_rows(rows, n_factors).T)

    def _low_pass_rows(self, rows: sp.csr_matrix, n_factors: int | None = None,
                       scale: float = 1.0) -> NDArray[np.float32]:
        """``scale * x D_i^-1/2 V_k^T V_k D_i^1/2`` as ``(b, n_items)``: one large GEMM."""
        vt = self.vt_ if n_factors is None else self.vt_[:n_factors]
        low = np.asarray((rows @ sp.diags(self.di_inv_sqrt_ * np.float32(scale))) @ vt.T,
                         dtype=np.float32)
        out = low @ vt
        out *= self.di_sqrt_[None, :]
        return out

    def blur(self, s: NDArray[np.float32]) -> NDArray[np.float32]:
        """Euler steps of ``ds/dt = s P~ - s`` up to ``T_b``."""
        if self.T_b / self.K_b == 0:
            return s
        panels = _to_panels(s, _panel_width(s.shape[1]))
        with _pool() as pool:
            out = self._blur_steps(self._filter(pool), panels, int(self.K_b))
        return _columns(out, s.shape[1])

    def _blur_steps(self, op: _Filter, s: Panels, steps: int) -> Panels:
        """``steps`` Euler blur steps ``s <- (1 - h) s + h s P~`` (``s``'s buffer is reused)."""
        h = self.T_b / self.K_b
        spare = np.empty_like(s)
        for _ in range(steps):
            s, spare = op.apply(s, spare, h, add=s, add_scale=1 - h), s
        return s

    def _blur_histories(self, op: _Filter, rows: sp.csr_matrix, width: int) -> Panels:
        h = self.T_b / self.K_b
        if h == 0:
            return _to_panels(rows.T.toarray(), width)
        first = op.apply_to_histories(rows, width, h, 1 - h)
        return self._blur_steps(op, first, int(self.K_b) - 1)

    def _sharpen_steps(self, op: _Filter, s: Panels, total: Panels | None) -> Panels:
        """Sharpening from ``s`` (its buffer is reused): the last step's output, each step's
        output also added to ``total`` when given. One RK4 step is the Horner form
        ``s - h P~ (s - h/2 P~ (s - h/3 P~ (s - h/4 P~ s)))``, four filter applications."""
        h = self.T_s / self.K_s
        coefficients = (h,) if self.solver == "euler" else (h / 4, h / 3, h / 2, h)
        spare = [np.empty_like(s), np.empty_like(s)]
        for _ in range(int(self.K_s)):
            u = s
            for c in coefficients:
                out = op.apply(u, spare.pop(), -c, add=s)
                if u is not s:
                    spare.append(u)
                u = out
            spare.append(s)
            s = u
            if total is not None:
                total += s
        return s

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        self.check_fitted()
        rows = history_rows(self.X_, np.asarray(user_indices), history, binary=True)
        b = rows.shape[0]
        if b == 0:
            return np.zeros((0, self.n_items_), dtype=np.float32)
        use_idl = self.idl_beta != 0 and len(self.vt_) > 0
        sharpening = self.T_s / self.K_s != 0
        with _pool() as pool:
            op = self._filter(pool)
            blurred = self._blur_histories(op, rows, _panel_width(b))
            total = None
            if self.t_point_combination and sharpening:
                total = blurred.copy()
            start = blurred
            if use_idl and self.merge == "early":
                _add_rows(start, self._low_pass_rows(rows, scale=self.idl_beta))
            out = self._sharpen_steps(op, start, total) if sharpening else start
            if total is not None:
                out = total
                out *= np.float32(1 / (1 + int(self.K_s)))
        if use_idl and self.merge == "late":
            _add_rows(out, self._low_pass_rows(rows, scale=self.idl_beta))
        return _rows(out, b)

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
