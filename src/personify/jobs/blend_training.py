"""Learning the blend of candidate sources offline, on a validation split carved from the
training events (one interaction of each sampled user held out: their latest when timestamps
order events, a random one otherwise), instead of hand-set weights."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from personify.data.interactions import Interactions
from personify.data.popularity import decayed_popularity
from personify.data.splits import timestamps_carry_order
from personify.serving.bundle import ModelBundle
from personify.serving.sources import interest_score
from personify.storage.online.port import OnlineStateConfig

POPULAR_GRID: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
FACTOR_GRID: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0)
INTEREST_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4, 0.8)
BLEND_SELECTIONS: tuple[str, ...] = ("one-se", "best")
TRENDING_GRID: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.3)
TRENDING_HALF_LIFE_DAYS = OnlineStateConfig().half_life.total_seconds() / 86_400.0
"""The live counters' default half-life: ``trending`` is scored as they stood at the cut-off."""
SOURCE_LENGTH = 100
"""Candidates per source, as the chain asks for them."""


@dataclass
class BlendFit:
    weights: dict[str, float]
    hit_rate: dict[str, float]
    users: int
    protocol: str = ""


def holdout_last(
    data: Interactions, *, max_users: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sampled user with >= 2 positive interactions: one held-out event — their latest
    when the timestamps carry order (``timestamps_carry_order``), a random one otherwise (file
    order is never taken for time: a log sorted by item id would hold out obscure items).
    Returns (users, held-out items, mask of log rows kept for training)."""
    positive = data.weights > 0
    rng = np.random.default_rng(seed)
    if holdout_protocol(data) == "per-user temporal":
        assert data.timestamps is not None
        key = np.asarray(data.timestamps, dtype=np.float64)
        order = np.lexsort((rng.random(len(key)), key, data.user_idx))
    else:
        order = np.lexsort((rng.random(len(data.user_idx)), data.user_idx))
    order = order[positive[order]]
    users_sorted = data.user_idx[order]
    last_pos = np.flatnonzero(np.r_[users_sorted[1:] != users_sorted[:-1], True])
    first_pos = np.r_[0, last_pos[:-1] + 1]
    eligible = last_pos[(last_pos - first_pos) >= 1]
    if eligible.size > max_users:
        eligible = rng.choice(eligible, max_users, replace=False)
    held_rows = order[eligible]
    keep = np.ones(len(data.user_idx), dtype=bool)
    keep[held_rows] = False
    return data.user_idx[held_rows], data.item_idx[held_rows], keep


def holdout_protocol(data: Interactions) -> str:
    """``per-user temporal`` when the log's timestamps order people's events, else
    ``per-user random`` (the blend's hold-out and the selection's validation agree)."""
    return "per-user temporal" if timestamps_carry_order(data) else "per-user random"


def learn_source_weights(
    data: Interactions,
    build: Callable[[Interactions, NDArray[np.int64]], ModelBundle],
    *,
    labels: Mapping[str, Sequence[str]] | None = None,
    max_users: int = 2000,
    k: int = 20,
    seed: int = 0,
    selection: str = "one-se",
) -> BlendFit:
    """Choose the weights of ``popular``, ``trending``, ``factors`` (when the bundle has factors)
    and ``interests`` (when ``labels`` gives items' categories) relative to ``collaborative``
    (= 1) jointly, by hit rate at ``k`` on held-out last interactions: with ``selection``
    ``one-se`` the one-standard-error rule (:func:`simplest_within_one_se`), with ``best`` the
    best rate.

    ``build`` trains a bundle on the reduced log (with lists for the given people when it has a
    user model). Each source scores a person as the serving chain does, relative to its best:
    collaborative = their list (else their history folded through the neighbours), factors =
    the top of their folded-in vector, interests = the most popular items of their three most
    frequent categories, trending = popularity decayed at the live counters' half-life (global:
    the validation log has no request context). Only candidates of some source (and the most
    popular and trending items) can reach the top ``k``, so the grid ranks just those."""
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
    pop = (bundle.popularity / (bundle.popularity.max() or 1.0)).astype(np.float32)
    live = decayed_popularity(reduced, TRENDING_HALF_LIFE_DAYS)
    live = (live / (live.max() or 1.0)).astype(np.float32)
    pop_order = np.argsort(-pop, kind="stable")
    live_order = np.argsort(-live, kind="stable")
    interests = _LabelIndex(bundle, labels) if labels else None
    factor_grid = FACTOR_GRID if bundle.factors is not None else (0.0,)
    interest_grid = INTEREST_GRID if interests is not None else (0.0,)
    grid = [(p, f, i, t) for p in POPULAR_GRID for f in factor_grid for i in interest_grid
            for t in TRENDING_GRID]
    # combos x (popular, factors, interests, trending)
    weights_grid = np.asarray(grid, dtype=np.float32)
    hits = np.zeros(len(grid), dtype=np.int64)
    matrix = reduced.matrix.tocsr()
    for u, target in zip(users, held, strict=True):
        row = matrix.getrow(int(u))
        history = row.indices[row.data > 0]
        weights = row.data[row.data > 0].astype(np.float64)
        parts = [
            _collaborative(bundle, data.users.ids[int(u)], history, weights),
            _factor_scores(bundle, history, weights),
            interests.scores(history) if interests is not None else {},
        ]
        # the k most popular items the person has not interacted with are always in reach
        support = np.union1d(
            np.fromiter((i for part in parts for i in part), np.int64),
            np.union1d(pop_order[:k + history.size], live_order[:k + history.size]),
        )
        support = support[~np.isin(support, history)]
        if support.size == 0:
            continue
        # support x (collaborative, popular, factors, interests, trending)
        table = np.zeros((support.size, 5), dtype=np.float32)
        table[:, 1] = pop[support]
        table[:, 4] = live[support]
        reachable = support.tolist()
        for col, part in ((0, parts[0]), (2, parts[1]), (3, parts[2])):
            table[:, col] = [part.get(item, 0.0) for item in reachable]
        totals = table[:, :1] + table[:, 1:] @ weights_grid.T  # support x combos
        kk = min(k, support.size)
        top = np.argpartition(-totals, kk - 1, axis=0)[:kk]
        hits += (support[top] == target).any(axis=0)
    rates = {combo: float(h) / users.size for combo, h in zip(grid, hits, strict=True)}
    if selection == "best":
        best_pop, best_factor, best_interest, best_trending = max(
            grid, key=lambda c: (rates[c], -c[0], -c[1], -c[2], -c[3])
        )
    else:
        best_pop, best_factor, best_interest, best_trending = simplest_within_one_se(
            rates, int(users.size)
        )
    learned = {"collaborative": 1.0, "popular": best_pop, "trending": best_trending}
    if bundle.factors is not None:
        learned["factors"] = best_factor
    if interests is not None:
        learned["interests"] = best_interest
    return BlendFit(
        learned,
        {f"popular={p},factors={f},interests={i},trending={t}": r
         for (p, f, i, t), r in rates.items()},
        int(users.size),
        holdout_protocol(data),
    )


def simplest_within_one_se(
    rates: Mapping[tuple[float, float, float, float], float], n: int
) -> tuple[float, float, float, float]:
    """The one-standard-error rule: among the (popular, factors, interests, trending) weights
    whose hit rate is within one standard error of the best (binomial, ``n`` held-out people),
    the one with the fewest personal sources switched on (each costs request time; a source
    weighed 0 is not asked), then the fewest fallbacks, then the best rate, then the smallest
    weights. Differences inside one standard error are noise of the validation sample."""
    best = max(rates.values())
    se = (best * (1.0 - best) / max(1, n)) ** 0.5
    close = [c for c, r in rates.items() if r >= best - se - 1e-12]
    return min(close, key=lambda c: (
        (c[1] > 0) + (c[2] > 0), (c[0] > 0) + (c[3] > 0), -rates[c], sum(c), c,
    ))


def _collaborative(bundle: ModelBundle, user_id: str, history: NDArray[np.int32],
                   weights: NDArray[np.float64]) -> dict[int, float]:
    """As the ``collaborative`` source scores: the person's list when the bundle has one, else
    the history folded through the neighbours; relative to the best."""
    listed = bundle.user_lists.row(user_id) if bundle.user_lists is not None else None
    if listed is not None:
        items, scores = listed[0][:SOURCE_LENGTH], listed[1][:SOURCE_LENGTH]
        return dict(zip(items.tolist(), (scores / (scores.max() or 1.0)).tolist(), strict=True))
    ids, found, _ = bundle.history_scores(
        bundle.items.lookup(history), list(weights), SOURCE_LENGTH
    )
    if not ids:
        return {}
    return dict(zip(bundle.items.indices(ids).tolist(),
                    (found / (found.max() or 1.0)).tolist(), strict=True))


def _factor_scores(bundle: ModelBundle, history: NDArray[np.int32],
                   weights: NDArray[np.float64]) -> dict[int, float]:
    """As the ``factors`` source scores: the top of the folded-in vector, relative to the best."""
    if bundle.factors is None or history.size == 0:
        return {}
    idx = history.astype(np.int64)
    top, scores = bundle.factors.top(bundle.factors.fold_in(idx, weights), SOURCE_LENGTH,
                                     exclude=idx)
    if top.size == 0:
        return {}
    best = float(np.max(scores)) or 1.0
    return dict(zip(top.tolist(), (np.clip(scores, 0, None) / best).tolist(), strict=True))


class _LabelIndex:
    """Items per category, most popular first, for the ``interests`` source's scores."""

    def __init__(self, bundle: ModelBundle, labels: Mapping[str, Sequence[str]]) -> None:
        self.popularity = bundle.popularity
        self.item_labels: list[tuple[str, ...]] = [
            tuple(dict.fromkeys(c.lower() for c in labels.get(item_id, ())))
            for item_id in bundle.items.ids
        ]
        members: dict[str, list[int]] = {}
        for i, cats in enumerate(self.item_labels):
            for c in cats:
                members.setdefault(c, []).append(i)
        self.top: dict[str, list[tuple[int, float]]] = {}
        for label, items in members.items():
            arr = np.asarray(items, dtype=np.int64)
            order = arr[np.argsort(-self.popularity[arr], kind="stable")][:SOURCE_LENGTH]
            best = float(self.popularity[order[0]]) or 1.0
            self.top[label] = [(int(i), float(self.popularity[i]) / best) for i in order]

    def scores(self, history: NDArray[np.int32]) -> dict[int, float]:
        counts: dict[str, int] = {}
        for i in history.tolist():
            for c in self.item_labels[i]:
                counts[c] = counts.get(c, 0) + 1
        chosen = sorted(counts, key=lambda c: -counts[c])[:3]
        out: dict[int, float] = {}
        for rank, label in enumerate(chosen):
            for item, p in self.top.get(label, ()):
                score = interest_score(rank, p)
                if score > out.get(item, 0.0):
                    out[item] = score
        return out
