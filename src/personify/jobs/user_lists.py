"""Building the per-person lists a bundle serves from (``personify.serving.user_lists``): the user
model scores every trained person in batches, their history is excluded, and each listed item gets
the history item that explains it (the one whose neighbours raise it most)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms._sparse import positive_matrix
from personify.algorithms.base import Recommender
from personify.data.interactions import Interactions
from personify.serving.user_lists import UserLists

BATCH = 1024
SCORE_MEMORY_BYTES = 1 << 30
"""Budget for one batch's dense scores and the model's working copies (about six float32
arrays of batch x items): large catalogues score fewer people at a time."""


def batch_size(n_items: int, budget: int = SCORE_MEMORY_BYTES) -> int:
    """People scored per batch so that ~6 dense float32 (batch x ``n_items``) arrays fit
    ``budget``: 1,024 for a Gowalla-size catalogue, fewer (at least 8) for larger ones."""
    return max(8, min(BATCH, budget // max(1, n_items * 4 * 6)))


def listed_users(data: Interactions, max_users: int) -> NDArray[np.int64]:
    """Indices of the people to list: those with a positive interaction, the most recently
    active first when there are more than ``max_users``."""
    positive = np.unique(data.user_idx[data.weights > 0])
    if positive.size <= max_users:
        return positive
    last = np.full(data.n_users, -np.inf)
    stamps = data.timestamps if data.timestamps is not None else np.arange(len(data.user_idx))
    np.maximum.at(last, data.user_idx, stamps.astype(np.float64))
    order = positive[np.argsort(-last[positive], kind="stable")]
    return np.sort(order[:max_users])


def build_user_lists(
    model: Recommender,
    data: Interactions,
    neighbours: sp.csr_matrix,
    *,
    k: int,
    users: NDArray[np.int64] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> UserLists:
    """Top-``k`` of ``model`` for ``users`` (default: every person with a positive interaction)
    with anchors from ``neighbours`` (items x items, source -> target); rows follow
    ``data.users``."""
    history = positive_matrix(data, binary=True).tocsr()
    if users is None:
        users = listed_users(data, len(data.users))
    chosen = np.unique(np.asarray(users, dtype=np.int64))
    counts = np.zeros(data.n_users, dtype=np.int64)
    # ``chosen`` is sorted: the parts come in row order
    parts_items: list[NDArray[np.int32]] = []
    parts_scores: list[NDArray[np.float32]] = []
    parts_anchors: list[NDArray[np.int32]] = []
    step = batch_size(data.n_items)
    for start in range(0, chosen.size, step):
        batch = chosen[start:start + step]
        ids, scores = model.recommend(batch, k, exclude=history)
        for row, u in enumerate(batch):
            ok = (ids[row] >= 0) & np.isfinite(scores[row]) & (scores[row] > 0)
            top = ids[row][ok].astype(np.int32)
            parts_items.append(top)
            parts_scores.append(scores[row][ok].astype(np.float32))
            parts_anchors.append(_anchors(history, neighbours, int(u), top))
            counts[u] = top.size
        if progress is not None:
            progress(min(chosen.size, start + step), chosen.size)
    indptr = np.zeros(data.n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])

    def joined(parts: list[NDArray[Any]], dtype: type) -> NDArray[Any]:
        return np.concatenate([np.zeros(0, dtype=dtype), *parts]).astype(dtype)

    stamps = data.timestamps
    through = float(stamps.max()) if stamps is not None and stamps.size else 0.0
    return UserLists(
        model.name,
        data.users,
        indptr,
        joined(parts_items, np.int32),
        joined(parts_scores, np.float32),
        joined(parts_anchors, np.int32),
        through,
    )


def _anchors(
    history: sp.csr_matrix, neighbours: sp.csr_matrix, user: int, top: NDArray[np.int32]
) -> NDArray[np.int32]:
    """Per listed item, the person's history item with the largest neighbour weight towards it
    (-1 when no history item reaches it)."""
    owned = history.indices[history.indptr[user]:history.indptr[user + 1]]
    if owned.size == 0:
        return np.full(top.size, -1, dtype=np.int32)
    sub = neighbours[owned][:, top].toarray()
    best = np.argmax(sub, axis=0)
    anchors = owned[best].astype(np.int32)
    anchors[sub[best, np.arange(top.size)] <= 0] = -1
    return anchors


__all__ = ["batch_size", "build_user_lists", "listed_users"]
