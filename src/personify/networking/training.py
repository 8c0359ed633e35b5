"""Learning the directional model from who acted towards whom.

The interactions before ``cut`` are split again in time into label periods: the newest
``windows`` (3) slices of ``label_share`` (a fifth) of them each. For each period the network
before it gives the features, and the *new* directed pairs inside it are the positives (``x``
acted towards ``y`` for the first time); every other candidate of ``x`` is a negative. The
model learned on the periods' rows, stacked, is then applied to the network up to ``cut``.
Several periods rather than one: each gives rows of other people at another stage of the
network (three times the labels of a single period on a small network).

The newest period also chooses the L2 penalty (among :data:`L2_GRID`) and the forward share
``α`` of the reciprocal combination (:mod:`personify.networking.model`, among
:data:`~personify.networking.model.SHARES`), as a deployment would meet them: a model fitted
on the *earlier* periods only ranks each person's candidates in the newest period by each
share, and the (penalty, share) with the best mean NDCG@20 of the people they newly interacted
with (either direction) wins; ties (at 4 decimals) go to the stronger penalty, then the share
nearest ½. The served model is then refitted on every period with that penalty. With a single
period (a short history) the penalty is held out by people instead (:func:`select_l2`: a model
fitted on half of its people ranks the other half's candidates) and the share is chosen on the
period itself. Nothing after ``cut`` is read.

Explicit answers (:class:`~personify.networking.state.Decision`: a connection request or an
introduction accepted or declined) are labels too, when present: each answer given in the
label period between two people that period's network knows is one more row, "the person asked
towards the one who asked", 1 for an accept and 0 for a decline, weighted
:data:`DECISION_WEIGHT` times an ordinary row (an answer is what the person said about this very
pair; an ordinary negative only says they did not act towards a candidate). A decline is
otherwise only one negative among every candidate the person did not act towards. Answers given
before the oldest period are not used: the network they would be scored on already holds them.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
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
WINDOWS = 3
"""Label periods the model learns from (the newest chooses the penalty and the share)."""
DECISION_WEIGHT = 5.0
"""Weight of an explicit accept / decline row relative to an ordinary candidate row."""

Extra = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]
"""(rows, labels, weights) added to every fit: the explicit answers."""


@dataclass(slots=True)
class Window:
    """One label period: the network before ``start`` gives the features, the first contacts
    in ``[start, end)`` the labels."""

    start: datetime
    x: NDArray[np.float64]
    """forward rows (``person -> other``)."""
    y: NDArray[np.float64]
    backward: NDArray[np.float64]
    """the same pairs the other way (``other -> person``)."""
    groups: list[tuple[str, list[str]]]
    positives: dict[str, set[str]]
    extra: Extra | None
    """the explicit answers given in the period."""
    answered: int = 0
    accepted: int = 0


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
    windows: int = WINDOWS,
) -> DirectionalModel:
    """Fit on ``interactions`` before ``cut`` (all of them when ``cut`` is None), on the label
    periods of the last ``windows`` x ``label_share`` of the history (see the module
    docstring). ``l2`` None: chosen among :data:`L2_GRID` on the newest period. ``decisions``:
    accepts and declines, used as explicit labels; the model's ``validation`` records how many
    were used and every choice's validation NDCG@20."""
    history = sorted(
        (x for x in interactions if cut is None or x.timestamp < cut), key=lambda x: x.timestamp
    )
    if len(history) < 10:
        raise ValueError("fitting the directional model needs at least 10 interactions")
    periods: list[Window] = []
    n = len(history)
    for k in range(max(1, windows), 0, -1):
        lo = int(n * (1.0 - label_share * k))
        if lo < 1:
            continue
        hi = int(n * (1.0 - label_share * (k - 1)))
        window = _window(history, lo, hi, profiles, per_source, warm_only, decisions or (),
                         decision_weight)
        if window is not None:
            periods.append(window)
    if not periods or not any(w.y.max() > 0 for w in periods):
        raise ValueError("training the directional model needs both positive and negative rows")
    validation: dict[str, float] = {}
    newest = periods[-1]
    earlier = periods[:-1]
    if len(earlier) >= 1 and any(w.y.max() > 0 for w in earlier):
        chosen_l2, share, validation = _select_on_newest(earlier, newest, l2)
        l2 = chosen_l2
        model = _fit_windows(periods, l2)
    else:  # one period: the penalty held out by people, the share in the period itself
        by_l2: dict[float, float] = {}
        if l2 is None:
            l2, by_l2 = select_l2(newest.x, newest.y, newest.backward, newest.groups,
                                  newest.positives, extra=newest.extra)
        model = _fit(newest.x, newest.y, l2, newest.extra)
        share, scores = select_share(
            model.predict(newest.x).tolist(), model.predict(newest.backward).tolist(),
            newest.groups, newest.positives,
        )
        validation = {f"ndcg@20_share_{s}": round(v, 4) for s, v in sorted(scores.items())}
        validation.update(
            {f"ndcg@20_heldout_l2_{k:g}": round(v, 4) for k, v in sorted(by_l2.items())})
    learned = model.with_share(share)
    learned.validation = validation
    learned.validation["l2"] = float(l2)
    learned.validation["windows"] = float(len(periods))
    learned.validation["decisions"] = float(sum(w.answered for w in periods))
    learned.validation["decisions_accepted"] = float(sum(w.accepted for w in periods))
    return learned


def _window(
    history: list[Interaction], lo: int, hi: int, profiles: dict[str, Profile] | None,
    per_source: int, warm_only: bool, decisions: Sequence[Decision], decision_weight: float,
) -> Window | None:
    """The rows of the label period ``history[lo:hi]`` (None when it has no new pair)."""
    inner = history[lo].timestamp
    end = history[hi].timestamp if hi < len(history) else None
    state = build_state([x for x in history if x.timestamp < inner], profiles)
    seen = {frozenset((p, q)) for p, s in state.people.items() for q in s.partners}
    new_pairs = [
        x for x in history
        if x.timestamp >= inner and (end is None or x.timestamp < end) and x.actor != x.target
        and frozenset((x.actor, x.target)) not in seen
    ]
    if not new_pairs:
        return None
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
    answered = [
        d for d in decisions
        if d.timestamp >= inner and (end is None or d.timestamp < end) and d.actor != d.target
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
    return Window(inner, matrix(rows), np.asarray(labels), matrix(backward), groups, positives,
                  extra, len(answered), sum(d.accepted for d in answered))


def _stack(periods: Sequence[Window]) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                 Extra | None]:
    x = np.vstack([w.x for w in periods])
    y = np.concatenate([w.y for w in periods])
    extras = [w.extra for w in periods if w.extra is not None]
    if not extras:
        return x, y, None
    return x, y, (np.vstack([e[0] for e in extras]), np.concatenate([e[1] for e in extras]),
                  np.concatenate([e[2] for e in extras]))


def _fit_windows(periods: Sequence[Window], l2: float) -> DirectionalModel:
    x, y, extra = _stack(periods)
    return _fit(x, y, l2, extra)


def _select_on_newest(
    earlier: list[Window], newest: Window, l2: float | None
) -> tuple[float, float, dict[str, float]]:
    """(L2, forward share, every pair's NDCG@20): each penalty's model fitted on the earlier
    periods ranks the newest period's candidates with each share; the best mean NDCG@20 wins
    (ties: the stronger penalty, then the share nearest ½)."""
    scores: dict[tuple[float, float], float] = {}
    for penalty in (l2,) if l2 is not None else L2_GRID:
        try:
            model = _fit_windows(earlier, penalty)
        except ValueError:
            continue
        _, by_share = select_share(
            model.predict(newest.x).tolist(), model.predict(newest.backward).tolist(),
            newest.groups, newest.positives,
        )
        for share, value in by_share.items():
            scores[(penalty, share)] = value
    if not scores:
        return (l2 if l2 is not None else DEFAULT_L2), 0.5, {}
    best = max(sorted(scores, key=lambda k: (-k[0], abs(k[1] - 0.5))),
               key=lambda k: round(scores[k], 4))
    validation: dict[str, float] = {}
    for share in SHARES:  # at the chosen penalty
        if (best[0], share) in scores:
            validation[f"ndcg@20_share_{share}"] = round(scores[(best[0], share)], 4)
    for penalty in sorted({k[0] for k in scores}):  # at each penalty's best share
        validation[f"ndcg@20_newest_l2_{penalty:g}"] = round(
            max(v for k, v in scores.items() if k[0] == penalty), 4)
    return best[0], best[1], validation


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
