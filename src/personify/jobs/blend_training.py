"""Learning the blend of candidate sources offline, on a validation split carved from the
training events (each sampled user's last interaction held out), instead of hand-set weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from personify.data.interactions import Interactions
from personify.serving.bundle import ModelBundle

POPULAR_GRID: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


@dataclass
class BlendFit:
    weights: dict[str, float]
    hit_rate: dict[float, float]
    users: int


def holdout_last(
    data: Interactions, *, max_users: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sampled user with >= 2 positive interactions: the index of their last one in the
    log. Returns (users, held-out items, mask of log rows kept for training)."""
    positive = data.weights > 0
    order = np.lexsort(
        (
            data.timestamps if data.timestamps is not None else np.arange(len(data.user_idx)),
            data.user_idx,
        )
    )
    order = order[positive[order]]
    users_sorted = data.user_idx[order]
    last_pos = np.flatnonzero(np.r_[users_sorted[1:] != users_sorted[:-1], True])
    first_pos = np.r_[0, last_pos[:-1] + 1]
    eligible = last_pos[(last_pos - first_pos) >= 1]
    rng = np.random.default_rng(seed)
    if eligible.size > max_users:
        eligible = rng.choice(eligible, max_users, replace=False)
    held_rows = order[eligible]
    keep = np.ones(len(data.user_idx), dtype=bool)
    keep[held_rows] = False
    return data.user_idx[held_rows], data.item_idx[held_rows], keep


def learn_source_weights(
    data: Interactions,
    build: Callable[[Interactions], ModelBundle],
    *,
    max_users: int = 2000,
    k: int = 20,
    seed: int = 0,
) -> BlendFit:
    """Choose the weight of ``popular`` relative to ``collaborative`` (= 1) by hit rate at ``k``
    on held-out last interactions; ``build`` trains a bundle on the reduced log."""
    users, held, keep = holdout_last(data, max_users=max_users, seed=seed)
    if users.size == 0:
        return BlendFit({}, {}, 0)
    reduced = Interactions.from_arrays(
        data.users.lookup(data.user_idx[keep]),
        data.items.lookup(data.item_idx[keep]),
        data.weights[keep],
        None if data.timestamps is None else data.timestamps[keep],
        users=data.users,
        items=data.items,
    )
    bundle = build(reduced)
    pop = bundle.popularity / (bundle.popularity.max() or 1.0)
    matrix = reduced.matrix.tocsr()
    hits = {w: 0 for w in POPULAR_GRID}
    for u, target in zip(users, held, strict=True):
        row = matrix.getrow(int(u))
        history = row.indices[row.data > 0]
        ids, scores, _ = bundle.history_scores(
            data.items.lookup(history), list(row.data[row.data > 0]), 500
        )
        collab = np.zeros(len(pop), dtype=np.float32)
        if ids:
            collab[bundle.items.indices(ids)] = scores / (scores.max() or 1.0)
        for w in POPULAR_GRID:
            total = collab + w * pop
            total[history] = -np.inf
            top = np.argpartition(-total, k)[:k]
            hits[w] += int(target in top)
    rates = {w: hits[w] / users.size for w in POPULAR_GRID}
    best = max(POPULAR_GRID, key=lambda w: (rates[w], -w))
    return BlendFit({"collaborative": 1.0, "popular": best}, rates, int(users.size))
