"""Loader for the NGCF / LightGCN Gowalla split (``datasets/gowalla_lightgcn``).

Each line of ``train.txt`` / ``test.txt`` is ``user item item ...`` with 0-based remapped ids.
Both files are loaded into one index space where index == remapped id, so published numbers
can be reproduced exactly.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.data.interactions import Interactions
from personify.data.vocabulary import Vocabulary
from personify.domain.errors import InvalidInput


def _read_lines(path: Path, max_users: int | None) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    users: list[NDArray[np.int64]] = []
    items: list[NDArray[np.int64]] = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 2:
                continue
            user = int(parts[0])
            if max_users is not None and user >= max_users:
                continue
            row = np.asarray(parts[1:], dtype=np.int64)
            items.append(row)
            users.append(np.full(len(row), user, dtype=np.int64))
    if not users:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(users), np.concatenate(items)


def _count_list(path: Path) -> int | None:
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip()) - 1  # header line


def _build(
    u: NDArray[np.int64], i: NDArray[np.int64], users: Vocabulary, items: Vocabulary
) -> Interactions:
    w = np.ones(len(u), dtype=np.float32)
    matrix = sp.csr_matrix((w, (u, i)), shape=(len(users), len(items)), dtype=np.float32)
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return Interactions(users, items, matrix, u, i, w, None)


def load_gowalla(
    path: str | Path, *, max_users: int | None = None
) -> tuple[Interactions, Interactions]:
    """The published (train, test) split in one index space (user / item index == remapped id).

    ``max_users`` keeps only users ``< max_users`` (a small slice for smoke tests); items keep
    the full catalogue so indices stay identical to the published ids.
    """
    root = Path(path)
    train_file, test_file = root / "train.txt", root / "test.txt"
    if not train_file.exists() and (root / "train.txt.gz").exists():  # Yelp2018 is gzipped
        train_file, test_file = root / "train.txt.gz", root / "test.txt.gz"
    if not train_file.exists() or not test_file.exists():
        raise InvalidInput(
            f"no Gowalla split at {root}",
            field="path",
            accepted="a directory holding train.txt and test.txt (LightGCN format, or gzipped)",
        )
    tu, ti = _read_lines(train_file, max_users)
    vu, vi = _read_lines(test_file, max_users)
    n_users = int(max(tu.max(initial=-1), vu.max(initial=-1))) + 1
    listed = _count_list(root / "item_list.txt")
    n_items = max(int(max(ti.max(initial=-1), vi.max(initial=-1))) + 1, listed or 0)
    users = Vocabulary(str(k) for k in range(n_users))
    items = Vocabulary(str(k) for k in range(n_items))
    return _build(tu, ti, users, items), _build(vu, vi, users, items)
