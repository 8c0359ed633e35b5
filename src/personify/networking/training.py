"""Learning the directional model from who acted towards whom.

The interactions before ``cut`` are split again in time: the network up to an inner cut gives
the features, and the *new* directed pairs of the last ``label_share`` of that period are the
positives (``x`` acted towards ``y`` for the first time); every other candidate of ``x`` is a
negative. The model learned there is then applied to the network up to ``cut``.

The same validation period chooses the forward share ``α`` of the reciprocal combination
(:mod:`personify.networking.model`): among :data:`~personify.networking.model.SHARES`, the one whose
ranking of each person's candidates gives the best mean NDCG@20 of the people they newly
interacted with (either direction) in that period; ties go to the share nearest ½. Nothing after
``cut`` is read.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from personify.networking.candidates import candidates, popular_people
from personify.networking.features import PairFeatures, directional, matrix
from personify.networking.model import SHARES, DirectionalModel, reciprocal
from personify.networking.state import Interaction, Profile, build_state


def fit_directional(
    interactions: list[Interaction],
    *,
    cut: datetime | None = None,
    profiles: dict[str, Profile] | None = None,
    label_share: float = 0.2,
    per_source: int = 60,
    l2: float = 30.0,
    warm_only: bool = True,
) -> DirectionalModel:
    """Fit on ``interactions`` before ``cut`` (all of them when ``cut`` is None)."""
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
    model = DirectionalModel.fit(matrix(rows), np.asarray(labels), l2=l2)
    share, scores = select_share(
        model.predict(matrix(rows)).tolist(), model.predict(matrix(backward)).tolist(), groups,
        positives,
    )
    learned = model.with_share(share)
    learned.validation = {f"ndcg@20_share_{s}": round(v, 4) for s, v in sorted(scores.items())}
    return learned


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
