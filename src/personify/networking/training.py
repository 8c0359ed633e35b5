"""Learning the directional model from who acted towards whom.

The interactions before ``cut`` are split again in time: the network up to an inner cut gives
the features, and the *new* directed pairs of the last ``label_share`` of that period are the
positives (``x`` acted towards ``y`` for the first time); every other candidate of ``x`` is a
negative. The model learned there is then applied to the network up to ``cut``.

The same validation period chooses the forward share ``α`` of the reciprocal combination
(:mod:`personify.networking.model`): among :data:`~personify.networking.model.SHARES`, the one whose
ranking of each person's candidates gives the best mean NDCG@20 of the people they newly
interacted with (either direction) in that period; ties go to the share nearest ½. The L2
penalty is chosen before, on the same period but held out: a model fitted on half of its people
ranks the other half's candidates (:func:`select_l2`). Nothing after ``cut`` is read.

Explicit answers (:class:`~personify.networking.state.Decision`: a connection request or an
introduction accepted or declined) are labels too, when present: each answer given in the
validation period between two people the inner network knows is one more row, "the person asked
towards the one who asked", 1 for an accept and 0 for a decline, weighted
:data:`DECISION_WEIGHT` times an ordinary row (an answer is what the person said about this very
pair; an ordinary negative only says they did not act towards a candidate). A decline is
otherwise only one negative among every candidate the person did not act towards. Answers given
before the inner cut are not used: the network they would be scored on already holds them.
"""

from __future__ import annotations

import math
import zlib
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from personify.networking.candidates import candidates, popular_people
from personify.networking.features import PairFeatures, directional, matrix
from personify.networking.model import SHARES, DirectionalModel, reciprocal
from personify.networking.state import Decision, Interaction, Profile, build_state

L2_GRID: tuple[float, ...] = (10.0, 30.0, 100.0)
"""L2 penalties tried on the validation period (weaker ones diverge on small networks)."""
DEFAULT_L2 = 30.0
"""Used when the validation period cannot be split (too few people with new pairs)."""
DECISION_WEIGHT = 5.0
"""Weight of an explicit accept / decline row relative to an ordinary candidate row."""

Extra = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]
"""(rows, labels, weights) added to every fit: the explicit answers."""


def fit_directional(
    interactions: list[Interaction],
    *,
    cut: datetime | None = None,
    profiles: dict[str, Profile] | None = None,
    label_share: float = 0.2,
    per_source: int = 60,
    l2: float | None = None,
    warm_only: bool = True,
    decisions: list[Decision] | None = None,
    decision_weight: float = DECISION_WEIGHT,
) -> DirectionalModel:
    """Fit on ``interactions`` before ``cut`` (all of them when ``cut`` is None). ``l2`` None:
    chosen among :data:`L2_GRID` by :func:`select_l2` on the validation period. ``decisions``:
    accepts and declines, used as explicit labels (see the module docstring); the model's
    ``validation`` records how many were used."""
    history = sorted(
        (x for x in interactions if cut is None or x.timestamp < cut), key=lambda x: x.timestamp
    )
    if len(history) < 10:
        raise ValueError("fitting the directional model needs at least 10 interactions")
    inner = history[int(len(history) * (1.0 - label_share))].timestamp
    state = build_state([x for x in history if x.timestamp < inner], profiles)
    seen = {frozenset((p, q)) for p, s in state.people.items() for q in s.partners}
    new_pairs = [
        x for x in history
        if x.timestamp >= inner and x.actor != x.target
        and frozenset((x.actor, x.target)) not in seen
    ]
    warm = [x for x in new_pairs if state.known(x.actor) and state.known(x.target)]
    positives: dict[str, set[str]] = {}
    # a pair with someone the network has not seen yet has no features to learn from (all
    # zero): learning from it teaches that being unknown is attractive, so only pairs of known
    # people are labels, unless there are none
    for x in warm if warm_only and warm else new_pairs:
        positives.setdefault(x.actor, set()).add(x.target)
        positives.setdefault(x.target, set())
    popular = popular_people(state, 200)
    active = {p for p in state.people if state.known(p)}
    rows: list[list[float]] = []
    backward: list[list[float]] = []
    groups: list[tuple[str, list[str]]] = []
    labels: list[float] = []
    for person in sorted(positives):
        pool = set(candidates(state, person, per_source=per_source, popular=popular))
        pool |= positives[person] | active
        pool -= state.people[person].partners if person in state.people else set()
        others = sorted(pool - {person})
        for other in others:
            pair = PairFeatures(state, person, other)
            rows.append(directional(state, pair, True))
            backward.append(directional(state, pair, False))
            labels.append(1.0 if other in positives[person] else 0.0)
        groups.append((person, others))
    xf, yf, xb = matrix(rows), np.asarray(labels), matrix(backward)
    answered = [
        d for d in decisions or ()
        if d.timestamp >= inner and (cut is None or d.timestamp < cut) and d.actor != d.target
        and state.known(d.actor) and state.known(d.target)
    ]
    extra: Extra | None = None
    if answered:
        extra = (
            matrix([directional(state, PairFeatures(state, d.actor, d.target), True)
                    for d in answered]),
            np.asarray([1.0 if d.accepted else 0.0 for d in answered]),
            np.full(len(answered), decision_weight),
        )
    by_l2: dict[float, float] = {}
    if l2 is None:
        l2, by_l2 = select_l2(xf, yf, xb, groups, positives, extra=extra)
    model = _fit(xf, yf, l2, extra)
    share, scores = select_share(
        model.predict(xf).tolist(), model.predict(xb).tolist(), groups, positives,
    )
    learned = model.with_share(share)
    learned.validation = {f"ndcg@20_share_{s}": round(v, 4) for s, v in sorted(scores.items())}
    learned.validation.update(
        {f"ndcg@20_heldout_l2_{k:g}": round(v, 4) for k, v in sorted(by_l2.items())})
    learned.validation["l2"] = float(l2)
    learned.validation["decisions"] = float(len(answered))
    learned.validation["decisions_accepted"] = float(sum(d.accepted for d in answered))
    return learned


def _fit(x: NDArray[np.float64], y: NDArray[np.float64], l2: float,
         extra: Extra | None) -> DirectionalModel:
    """The directional model on ``x`` / ``y`` (weight 1) and the explicit answers."""
    if extra is None:
        return DirectionalModel.fit(x, y, l2=l2)
    ex, ey, ew = extra
    return DirectionalModel.fit(
        np.vstack([x, ex]), np.concatenate([y, ey]), l2=l2,
        sample_weight=np.concatenate([np.ones(len(y)), ew]))


def select_l2(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    backward: NDArray[np.float64],
    groups: list[tuple[str, list[str]]],
    positives: dict[str, set[str]],
    *,
    grid: tuple[float, ...] = L2_GRID,
    extra: Extra | None = None,
) -> tuple[float, dict[float, float]]:
    """The L2 penalty with the best held-out NDCG@20 on the validation period: its people are
    split in two halves (by a hash of the id), a model fitted on one half's rows ranks the other
    half's candidates (both sides' interest multiplied), and the two halves' scores are
    averaged. Ties go to the stronger penalty. ``extra`` (the explicit answers) joins every
    fit."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for _, others in groups:
        bounds.append((start, start + len(others)))
        start += len(others)
    fold = [zlib.crc32(person.encode()) % 2 for person, _ in groups]
    scores: dict[float, float] = {}
    for l2 in grid:
        halves = []
        for k in (0, 1):
            train = [i for i, f in enumerate(fold) if f != k]
            test = [i for i, f in enumerate(fold) if f == k]
            if not train or not test:
                continue
            tr = np.concatenate([np.arange(*bounds[i]) for i in train])
            te = np.concatenate([np.arange(*bounds[i]) for i in test])
            try:
                model = _fit(x[tr], y[tr], l2, extra)
            except ValueError:  # one half has no positive row
                continue
            _, by_share = select_share(
                model.predict(x[te]).tolist(), model.predict(backward[te]).tolist(),
                [groups[i] for i in test], positives, shares=(0.5,),
            )
            halves.append(by_share[0.5])
        if halves:
            scores[l2] = sum(halves) / len(halves)
    if not scores:
        return DEFAULT_L2, {}
    best = max(sorted(scores, reverse=True), key=lambda v: scores[v])
    return best, scores


def select_share(
    forward: list[float],
    backward: list[float],
    groups: list[tuple[str, list[str]]],
    positives: dict[str, set[str]],
    *,
    shares: tuple[float, ...] = SHARES,
    k: int = 20,
) -> tuple[float, dict[float, float]]:
    """The forward share whose rankings give the best mean NDCG@k on the validation period,
    and every share's mean NDCG@k.

    ``forward`` / ``backward`` are the predicted interests of the rows of ``groups`` (each
    person's candidates, in order); a candidate is relevant when the pair interacted in either
    direction for the first time in the validation period."""
    def relevant(person: str, other: str) -> bool:
        return other in positives.get(person, ()) or person in positives.get(other, ())

    best, best_score = 0.5, -1.0
    by_share: dict[float, float] = {}
    for share in sorted(shares, key=lambda s: abs(s - 0.5)):
        total, n, start = 0.0, 0, 0
        for person, others in groups:
            scores = [
                reciprocal(forward[start + i], backward[start + i], share)
                for i in range(len(others))
            ]
            hits = [relevant(person, o) for o in others]
            start += len(others)
            if not any(hits):
                continue
            order = sorted(range(len(others)), key=lambda i: (-scores[i], others[i]))[:k]
            dcg = sum(1.0 / math.log2(r + 2) for r, i in enumerate(order) if hits[i])
            ideal = sum(1.0 / math.log2(r + 2) for r in range(min(sum(hits), k)))
            total += dcg / ideal
            n += 1
        score = by_share[share] = total / n if n else 0.0
        if score > best_score + 1e-12:
            best, best_score = share, score
    return best, by_share
