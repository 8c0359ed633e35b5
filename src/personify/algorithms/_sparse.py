"""Private sparse-matrix building blocks shared by the neighbourhood and linear models."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.data.interactions import Interactions


def positive_matrix(data: Interactions, *, binary: bool) -> sp.csr_matrix:
    """The users x items matrix with non-positive weights dropped; 0/1 when ``binary``."""
    m = sp.csr_matrix(data.matrix, dtype=np.float32, copy=True)
    m.data[m.data < 0] = 0
    m.eliminate_zeros()
    if binary:
        m.data[:] = 1.0
    return m


def history_rows(
    train: sp.csr_matrix, users: NDArray[np.int64], history: sp.csr_matrix | None, *, binary: bool
) -> sp.csr_matrix:
    """Rows for ``users``: the given ``history`` (fold-in) or the training matrix rows."""
    if history is None:
        return train[users]
    rows = sp.csr_matrix(history, dtype=np.float32, copy=True)
    if rows.shape[1] != train.shape[1]:
        raise ValueError(f"history has {rows.shape[1]} columns, the model knows {train.shape[1]}")
    rows.data[rows.data < 0] = 0
    rows.eliminate_zeros()
    if binary:
        rows.data[:] = 1.0
    return rows


def row_normalize(m: sp.csr_matrix) -> sp.csr_matrix:
    """Each row divided by its sum (rows summing to zero stay zero)."""
    sums = np.asarray(m.sum(axis=1)).ravel()
    inv = np.divide(1.0, sums, out=np.zeros_like(sums, dtype=np.float64), where=sums > 0)
    return sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ m)


def topk_rows(dense: NDArray[np.float32], k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest positive values of every row of a dense block, as CSR."""
    n_rows, n_cols = dense.shape
    k = min(k, n_cols)
    if k <= 0:
        return sp.csr_matrix((n_rows, n_cols), dtype=np.float32)
    idx = np.argpartition(-dense, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(dense, idx, axis=1)
    rows = np.repeat(np.arange(n_rows), k)
    keep = vals.ravel() > 0
    return sp.csr_matrix(
        (vals.ravel()[keep], (rows[keep], idx.ravel()[keep])),
        shape=(n_rows, n_cols),
        dtype=np.float32,
    )


PAD_CELLS = 8_000_000
"""At most this many padded cells (32 MB of scores) per partition in :func:`sparse_topk_rows`."""


def sparse_topk_rows(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest positive values of every row of a sparse matrix (rows with at most
    ``k`` entries keep them all). The rows are padded to the longest one and partitioned at once,
    as ``topk_rows`` does for dense blocks (ties at the k-th value may pick either item)."""
    m = sp.csr_matrix(m, dtype=np.float32)
    m.sum_duplicates()
    n_rows = m.shape[0]
    lengths = np.diff(m.indptr)
    width = int(lengths.max()) if n_rows else 0
    if width <= k:
        kept = m.copy()
        kept.data[kept.data <= 0] = 0.0
        kept.eliminate_zeros()
        return kept
    if n_rows * width > PAD_CELLS and n_rows > 1:  # bound the padded block's memory
        step = max(1, PAD_CELLS // width)
        return sp.csr_matrix(sp.vstack(
            [sparse_topk_rows(m[start:start + step], k) for start in range(0, n_rows, step)],
            format="csr",
        ), dtype=np.float32)
    rows = np.repeat(np.arange(n_rows), lengths)
    slot = np.arange(m.data.size) - m.indptr[rows]
    values = np.full((n_rows, width), -np.inf, dtype=np.float32)
    columns = np.zeros((n_rows, width), dtype=m.indices.dtype)
    values[rows, slot] = m.data
    columns[rows, slot] = m.indices
    best = np.argpartition(-values, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(values, best, axis=1).ravel()
    cols = np.take_along_axis(columns, best, axis=1).ravel()
    row_ids = np.repeat(np.arange(n_rows), k)
    keep = top > 0
    return sp.csr_matrix(
        (top[keep], (row_ids[keep], cols[keep])), shape=m.shape, dtype=np.float32
    )


def blockwise_topk(
    left: sp.csr_matrix,
    right: sp.csc_matrix,
    transform: Callable[[NDArray[np.float32], slice], NDArray[np.float32]],
    k: int,
    *,
    block_size: int = 1024,
) -> sp.csr_matrix:
    """``topk_rows(transform(left[block] @ right))`` block by block: an item x item matrix is
    never materialised densely, so memory stays ``block_size x n_items`` floats."""
    n = left.shape[0]
    parts = []
    right = sp.csc_matrix(right)
    for start in range(0, n, block_size):
        block = slice(start, min(start + block_size, n))
        dense = np.asarray((left[block] @ right).toarray(), dtype=np.float32)
        dense = transform(dense, block)
        parts.append(topk_rows(dense, k))
    return sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=np.float32)


def similar_from_rows(
    matrix: sp.csr_matrix | NDArray[np.float32], items: NDArray[np.int64], n: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Top-``n`` of the given rows of an item x item matrix, the item itself excluded."""
    from personify.algorithms.base import top_n

    if sp.issparse(matrix):
        dense = np.asarray(sp.csr_matrix(matrix)[items].toarray(), dtype=np.float32)
    else:
        dense = np.array(matrix[items], dtype=np.float32)
    if sp.issparse(matrix):
        dense[dense == 0] = -np.inf  # no link at all: not similar
    dense[np.arange(len(items)), items] = -np.inf
    return top_n(dense, n)
