"""Learning the blend of candidate sources offline, on a validation split carved from the
training events (one interaction of each sampled user held out: their latest when timestamps
order events, a random one otherwise), instead of hand-set weights.

Which weights are learned, on which grid and scored how comes from the source registry
(``SourceSpec.blend``, :mod:`personify.serving.source_registry`): a plugin source with a
``BlendLearning`` is learned like the built-in ones."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from personify.data.interactions import Interactions
from personify.data.splits import timestamps_carry_order
from personify.serving.builtin_sources import (
    FACTOR_GRID,
    INTEREST_GRID,
    POPULAR_GRID,
    SOURCE_LENGTH,
    TRENDING_GRID,
    TRENDING_HALF_LIFE_DAYS,
)
from personify.serving.bundle import ModelBundle
from personify.serving.source_registry import (
    BlendContext,
    OfflineScorer,
    SourceRegistry,
    SourceSpec,
    source_registry,
)

__all__ = [
    "BLEND_SELECTIONS", "FACTOR_GRID", "INTEREST_GRID", "POPULAR_GRID", "SOURCE_LENGTH",
    "TRENDING_GRID", "TRENDING_HALF_LIFE_DAYS", "BlendFit", "holdout_last", "holdout_protocol",
    "learn_source_weights", "simplest_within_one_se",
]

BLEND_SELECTIONS: tuple[str, ...] = ("one-se", "best")
MAX_GRID = 2000
"""Up to this many weight combinations the grid is searched exhaustively; beyond (several
learned sources), by coordinate ascent over the same grids."""


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


@dataclass
class _Person:
    support: NDArray[np.int64]
    table: NDArray[np.float32]
    """support x learned sources: each source's score of each reachable item."""
    target: int


def learn_source_weights(
    data: Interactions,
    build: Callable[[Interactions, NDArray[np.int64], NDArray[np.bool_]], ModelBundle],
    *,
    labels: Mapping[str, Sequence[str]] | None = None,
    max_users: int = 2000,
    k: int = 20,
    seed: int = 0,
    selection: str = "one-se",
    registry: SourceRegistry | None = None,
) -> BlendFit:
    """Choose the weights of the registry's learned sources (``SourceSpec.blend``) jointly, by
    hit rate at ``k`` on held-out last interactions: with ``selection`` ``one-se`` the
    one-standard-error rule (:func:`simplest_within_one_se`), with ``best`` the best rate. A
    source whose grid is one value (``collaborative`` = 1) is the fixed reference; a source
    whose scorer is unavailable for this run (no factors, no labels) is not learned.

    ``build`` trains a bundle on the reduced log (with lists for the given people when it has a
    user model; ``keep`` marks the log rows it holds). Each source scores a person as the
    serving chain does, relative to its best.
    Only candidates of some source (and the top of the dense ones, popularity and trending) can
    reach the top ``k``, so the grid ranks just those."""
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
    bundle = build(reduced, np.unique(users), keep)
    held_at = (
        dict(zip(data.user_idx[~keep].tolist(), data.timestamps[~keep].tolist(), strict=True))
        if data.timestamps is not None else {}
    )
    ctx = BlendContext(bundle, reduced, labels, k, held_at)
    learned: list[tuple[SourceSpec, OfflineScorer]] = []
    for spec in (registry or source_registry()).learned():
        assert spec.blend is not None
        if not all(bundle.provides(need) for need in spec.needs):
            continue
        scorer = spec.blend.prepare(ctx)
        if scorer is not None:
            learned.append((spec, scorer))
    people = _tables(reduced, users, held, [s for _, s in learned], k)
    grids = [spec.blend.grid for spec, _ in learned]  # type: ignore[union-attr]
    personal = [spec.personal for spec, _ in learned]
    rates = _search(people, grids, personal, int(users.size), selection, k)
    if selection == "best":
        chosen = max(rates, key=lambda c: (rates[c], *(-w for w in c)))
    else:
        chosen = simplest_within_one_se(rates, int(users.size), personal)
    names = [spec.name for spec, _ in learned]
    varied = [i for i, g in enumerate(grids) if len(g) > 1]
    return BlendFit(
        dict(zip(names, chosen, strict=True)),
        {",".join(f"{names[i]}={combo[i]}" for i in varied): r for combo, r in rates.items()},
        int(users.size),
        holdout_protocol(data),
    )


def _tables(reduced: Interactions, users: NDArray[np.int64], held: NDArray[np.int64],
            scorers: Sequence[OfflineScorer], k: int) -> list[_Person]:
    """Per held-out person: the items some source can bring into the top ``k`` (never their
    history) and every source's score of them."""
    matrix = reduced.matrix.tocsr()
    orders: dict[int, NDArray[np.int64]] = {}  # a dense vector's items, best first

    def order_of(vector: NDArray[np.float32]) -> NDArray[np.int64]:
        key = id(vector)
        if key not in orders:
            orders[key] = np.argsort(-vector, kind="stable").astype(np.int64)
        return orders[key]

    people = []
    for u, target in zip(users, held, strict=True):
        row = matrix.getrow(int(u))
        history = row.indices[row.data > 0]
        weights = row.data[row.data > 0].astype(np.float64)
        parts = [scorer(int(u), history, weights) for scorer in scorers]
        reach = [np.fromiter(part.keys(), np.int64, len(part)) if isinstance(part, Mapping)
                 else order_of(part)[:k + history.size] for part in parts]
        support = np.unique(np.concatenate(reach)) if reach else np.zeros(0, np.int64)
        support = support[~np.isin(support, history)]
        if support.size == 0:
            continue
        table = np.zeros((support.size, len(parts)), dtype=np.float32)
        listed = support.tolist()
        for col, part in enumerate(parts):
            if isinstance(part, Mapping):
                table[:, col] = [part.get(item, 0.0) for item in listed]
            else:
                table[:, col] = part[support]
        people.append(_Person(support, table, int(target)))
    return people


def _hits(people: Sequence[_Person], combos: NDArray[np.float32], k: int) -> NDArray[np.int64]:
    hits = np.zeros(len(combos), dtype=np.int64)
    for person in people:
        totals = person.table @ combos.T  # support x combos
        kk = min(k, person.support.size)
        top = np.argpartition(-totals, kk - 1, axis=0)[:kk]
        hits += (person.support[top] == person.target).any(axis=0)
    return hits


def _search(people: Sequence[_Person], grids: Sequence[tuple[float, ...]],
            personal: Sequence[bool], n: int, selection: str, k: int
            ) -> dict[tuple[float, ...], float]:
    """Hit rate per evaluated combination: every combination of the grids when they are few,
    else coordinate ascent from the reference alone (each source's grid tried with the others
    held, until no change)."""
    def rate(combos: list[tuple[float, ...]]) -> dict[tuple[float, ...], float]:
        if not combos:  # every trial already rated (a coordinate revisited)
            return {}
        hits = _hits(people, np.asarray(combos, dtype=np.float32), k)
        return {c: float(h) / n for c, h in zip(combos, hits.tolist(), strict=True)}

    size = int(np.prod([len(g) for g in grids])) if grids else 1
    if size <= MAX_GRID:
        return rate(list(itertools.product(*grids)))
    rates: dict[tuple[float, ...], float] = {}
    current = tuple(g[0] if len(g) == 1 else 0.0 if 0.0 in g else g[0] for g in grids)
    rates.update(rate([current]))
    for _ in range(4):
        moved = False
        for d, grid in enumerate(grids):
            if len(grid) == 1:
                continue
            trial = [(*current[:d], w, *current[d + 1:]) for w in grid]
            rates.update(rate([c for c in trial if c not in rates]))
            scoped = {c: rates[c] for c in trial}
            best = (max(scoped, key=lambda c: (scoped[c], *(-w for w in c)))
                    if selection == "best" else simplest_within_one_se(scoped, n, personal))
            if best != current:
                current, moved = best, True
        if not moved:
            break
    return rates


def simplest_within_one_se(
    rates: Mapping[tuple[float, ...], float], n: int, personal: Sequence[bool]
) -> tuple[float, ...]:
    """The one-standard-error rule: among the weight combinations (one weight per learned
    source, ``personal`` marking the personal ones) whose hit rate is within one standard error
    of the best (binomial, ``n`` held-out people), the one with the fewest personal sources
    switched on (each costs request time; a source weighed 0 is not asked), then the fewest
    fallbacks, then the best rate, then the smallest weights. Differences inside one standard
    error are noise of the validation sample."""
    best = max(rates.values())
    se = (best * (1.0 - best) / max(1, n)) ** 0.5
    close = [c for c, r in rates.items() if r >= best - se - 1e-12]
    return min(close, key=lambda c: (
        sum(w > 0 for w, p in zip(c, personal, strict=True) if p),
        sum(w > 0 for w, p in zip(c, personal, strict=True) if not p),
        -rates[c], sum(c), c,
    ))
