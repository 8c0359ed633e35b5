"""The sparse row-wise top-k equals the dense one."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from personify.algorithms._sparse import sparse_topk_rows, topk_rows


@pytest.mark.parametrize("k", [1, 3, 7, 50])
def test_sparse_topk_rows_matches_the_dense_selection(k: int) -> None:
    rng = np.random.default_rng(k)
    values = rng.random((40, 60)).astype(np.float32)
    values[rng.random((40, 60)) < 0.7] = 0.0
    values[rng.random((40, 60)) < 0.05] = -0.5  # negatives are never kept
    got = sparse_topk_rows(sp.csr_matrix(values), k).toarray()
    assert np.array_equal(got, topk_rows(values, k).toarray())
    assert (np.count_nonzero(got, axis=1) <= k).all()


def test_empty_rows_and_matrix() -> None:
    empty = sp.csr_matrix((3, 5), dtype=np.float32)
    assert sparse_topk_rows(empty, 2).nnz == 0


def test_wide_rows_are_partitioned_in_bounded_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    from personify.algorithms import _sparse

    monkeypatch.setattr(_sparse, "PAD_CELLS", 100)  # 40 rows x 60 columns: several blocks
    rng = np.random.default_rng(7)
    values = rng.random((40, 60)).astype(np.float32)
    got = sparse_topk_rows(sp.csr_matrix(values), 5).toarray()
    assert np.array_equal(got, topk_rows(values, 5).toarray())
