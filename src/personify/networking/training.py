"""Learning the directional model from who acted towards whom.

The interactions before ``cut`` are split again in time: the network up to an inner cut gives
the features, and the *new* directed pairs of the last ``label_share`` of that period are the
positives (``x`` acted towards ``y`` for the first time); every other candidate of ``x`` is a
negative. The model learned there is then applied to the network up to ``cut``.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from personify.networking.candidates import candidates, popular_people
from personify.networking.features import PairFeatures, directional, matrix
from personify.networking.model import DirectionalModel
from personify.networking.state import Interaction, Profile, build_state


def fit_directional(
    interactions: list[Interaction],
    *,
    cut: datetime | None = None,
    profiles: dict[str, Profile] | None = None,
    label_share: float = 0.2,
    per_source: int = 60,
    l2: float = 30.0,
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
    positives: dict[str, set[str]] = {}
    for x in history:
        if (
            x.timestamp >= inner
            and x.actor != x.target
            and frozenset((x.actor, x.target)) not in seen
        ):
            positives.setdefault(x.actor, set()).add(x.target)
            positives.setdefault(x.target, set())
    popular = popular_people(state, 200)
    active = {p for p in state.people if state.known(p)}
    rows: list[list[float]] = []
    labels: list[float] = []
    for person in sorted(positives):
        pool = set(candidates(state, person, per_source=per_source, popular=popular))
        pool |= positives[person] | active
        pool -= state.people[person].partners if person in state.people else set()
        for other in sorted(pool):
            if other == person:
                continue
            pair = PairFeatures(state, person, other)
            rows.append(directional(state, pair, True))
            labels.append(1.0 if other in positives[person] else 0.0)
    return DirectionalModel.fit(matrix(rows), np.asarray(labels), l2=l2)
