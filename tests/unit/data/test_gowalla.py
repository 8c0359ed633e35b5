"""The Gowalla loader (a small slice only; the full split is exercised in benchmarks/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personify.data.gowalla import load_gowalla
from personify.domain.errors import InvalidInput


def test_loader_reads_the_lightgcn_format(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("0 0 1 2\n1 2 3\n2 4\n")
    (tmp_path / "test.txt").write_text("0 3\n1 0 4\n2 1\n")
    train, test = load_gowalla(tmp_path)
    assert (train.n_users, train.n_items) == (3, 5)
    assert train.items is test.items and train.users is test.users
    np.testing.assert_array_equal(train.matrix.toarray()[1], [0, 0, 1, 1, 0])
    np.testing.assert_array_equal(test.matrix.toarray()[1], [1, 0, 0, 0, 1])
    small, _ = load_gowalla(tmp_path, max_users=2)
    assert small.n_users == 2


def test_missing_split_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        load_gowalla(tmp_path)
    assert info.value.field == "path"


@pytest.mark.datasets
def test_real_gowalla_slice(datasets_dir: Path) -> None:
    train, test = load_gowalla(datasets_dir / "gowalla_lightgcn", max_users=500)
    assert train.n_users == 500 and train.n_items == 40_981
    assert train.matrix.multiply(test.matrix).nnz == 0  # no overlap per user
    assert np.all(np.diff(test.matrix.indptr) >= 1)
