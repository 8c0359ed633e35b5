"""Learning the blend of candidate sources offline, on a validation split carved from the
training events (each sampled user's last interaction held out), instead of hand-set weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from personify.data.interactions import Interactions
from personify.serving.bundle import ModelBundle

POPULAR_GRID: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
FACTOR_GRID: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0)
SOURCE_LENGTH = 100
"""Candidates per source, as the chain asks for them."""


@dataclass
class BlendFit:
    weights: dict[str, float]
    hit_rate: dict[str, float]
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
    build: Callable[[Interactions, NDArray[np.int64]], ModelBundle],
    *,
    max_users: int = 2000,
    k: int = 20,
    seed: int = 0,
) -> BlendFit:
    """Choose the weights of ``popular`` and ``factors`` (when the bundle has factors) relative
    to ``collaborative`` (= 1) jointly, by hit rate at ``k``
    on held-out last interactions; ``build`` trains a bundle on the reduced log (with lists for
    the given people when it has a user model). A person's collaborative scores are what serving
    uses: their list when the bundle has one, else their history folded through the neighbours."""
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
    bundle = build(reduced, np.unique(users))
    pop = bundle.popularity / (bundle.popularity.max() or 1.0)
    matrix = reduced.matrix.tocsr()
    factor_grid = FACTOR_GRID if bundle.factors is not None else (0.0,)
    grid = [(p, f) for p in POPULAR_GRID for f in factor_grid]
    hits = dict.fromkeys(grid, 0)
    for u, target in zip(users, held, strict=True):
        row = matrix.getrow(int(u))
        history = row.indices[row.data > 0]
        weights = row.data[row.data > 0].astype(np.float64)
        collab = _collaborative(bundle, data.users.ids[int(u)], history, weights, len(pop))
        factor = _factor_scores(bundle, history, weights, len(pop))
        for w_pop, w_factor in grid:
            total = collab + w_pop * pop
            if w_factor:
                total = total + w_factor * factor
            total[history] = -np.inf
            top = np.argpartition(-total, k)[:k]
            hits[(w_pop, w_factor)] += int(target in top)
    rates = {combo: hits[combo] / users.size for combo in grid}
    best_pop, best_factor = max(grid, key=lambda c: (rates[c], -c[0], -c[1]))
    weights_out = {"collaborative": 1.0, "popular": best_pop}
    if bundle.factors is not None:
        weights_out["factors"] = best_factor
    return BlendFit(
        weights_out,
        {f"popular={p},factors={f}" if bundle.factors is not None else str(p): r
         for (p, f), r in rates.items()},
        int(users.size),
    )


def _collaborative(bundle: ModelBundle, user_id: str, history: NDArray[np.int32],
                   weights: NDArray[np.float64], n_items: int) -> NDArray[np.float32]:
    """As the ``collaborative`` source scores: the person's list when the bundle has one, else
    the history folded through the neighbours; relative to the best."""
    out = np.zeros(n_items, dtype=np.float32)
    listed = bundle.user_lists.row(user_id) if bundle.user_lists is not None else None
    if listed is not None:
        items, scores = listed[0], listed[1]
        out[items] = scores / (scores.max() or 1.0)
        return out
    ids, found, _ = bundle.history_scores(
        bundle.items.lookup(history), list(weights), SOURCE_LENGTH
    )
    if ids:
        out[bundle.items.indices(ids)] = found / (found.max() or 1.0)
    return out


def _factor_scores(bundle: ModelBundle, history: NDArray[np.int32],
                   weights: NDArray[np.float64], n_items: int) -> NDArray[np.float32]:
    """As the ``factors`` source scores: the top of the folded-in vector, relative to the best."""
    out = np.zeros(n_items, dtype=np.float32)
    if bundle.factors is None or history.size == 0:
        return out
    idx = history.astype(np.int64)
    top, scores = bundle.factors.top(bundle.factors.fold_in(idx, weights), SOURCE_LENGTH,
                                     exclude=idx)
    if top.size:
        out[top] = np.clip(scores, 0, None) / (float(np.max(scores)) or 1.0)
    return out
