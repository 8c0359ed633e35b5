"""Features of one direction of a pair: how likely ``x`` is to act towards ``y``.

Every feature is read from the network state at scoring time; the same function feeds training
(on an earlier cut) and serving, so the model sees the same quantities in both.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from personify.networking.state import ACTIVITY_DAYS, NetworkState, PersonState, person_cosine

FEATURES: tuple[str, ...] = (
    "common_neighbours",
    "adamic_adar",
    "shared_threads",
    "offers_what_other_seeks",
    "seeks_what_other_offers",
    "topic_similarity",
    "actor_activity",
    "target_received",
    "target_activity",
    "actor_recency",
    "target_recency",
    "target_community_popularity",
    "target_partners",
    "target_recent_activity",
    "actor_recent_activity",
    "target_recent_acts",
)

RECENCY_DAYS = 21.0


def _recency(p: PersonState | None, now: datetime | None) -> float:
    if p is None or p.last_active is None or now is None:
        return 0.0
    days = max(0.0, (now - p.last_active).total_seconds() / 86400.0)
    return math.exp(-days / RECENCY_DAYS)


class PairFeatures:
    """Shared quantities of a pair, computed once for both directions."""

    __slots__ = ("aa", "log_cn", "log_threads", "pa", "pb", "topic_sim", "topics_a", "topics_b")

    def __init__(self, state: NetworkState, a: str, b: str) -> None:
        self.pa = state.people.get(a)
        self.pb = state.people.get(b)
        common = state.common_neighbours(a, b)
        self.log_cn = math.log1p(len(common))
        self.aa = state.adamic_adar(common)
        self.log_threads = math.log1p(state.shared_threads(a, b))
        self.topics_a = self.pa.topics() if self.pa is not None else {}
        self.topics_b = self.pb.topics() if self.pb is not None else {}
        self.topic_sim = (
            person_cosine(self.pa, self.topics_a, self.pb, self.topics_b)
            if self.pa is not None and self.pb is not None
            else 0.0
        )


def _person(state: NetworkState, p: PersonState | None) -> tuple[float, ...]:
    """(log acts, log received, recency, log partners, log decayed activity, log decayed acts
    towards others), cached per state version (each person's numbers are read once per
    request, not once per pair)."""
    if p is None:
        return (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    cache = state.feature_cache
    if cache.version != state.version:
        cache.values.clear()
        cache.version = state.version
    key = id(p)
    hit = cache.values.get(key)
    if hit is None:
        now = state.now
        hit = cache.values[key] = (
            math.log1p(p.n_acts),
            math.log1p(p.n_received),
            _recency(p, now),
            math.log1p(len(p.links)),
            math.log1p(_decayed(p, now)),
            math.log1p(_decayed_acts(p, now)),
        )
    return hit


def directional(state: NetworkState, pair: PairFeatures, forward: bool) -> list[float]:
    """Features of ``a -> b`` (``forward``) or ``b -> a``."""
    x, y = (pair.pa, pair.pb) if forward else (pair.pb, pair.pa)
    fx, fy = _person(state, x), _person(state, y)
    return [
        pair.log_cn,
        pair.aa,
        pair.log_threads,
        person_cosine(x, x.offers, y, y.seeks) if x and y else 0.0,
        person_cosine(x, x.seeks, y, y.offers) if x and y else 0.0,
        pair.topic_sim,
        fx[0],
        fy[1],
        fy[0],
        fx[2],
        fy[2],
        0.0 if x is None or y is None else _target_popularity(x.top_topics(), y),
        fy[3],
        fy[4],
        fx[4],
        fy[5],
    ]


def _decayed(p: PersonState | None, now: datetime | None) -> float:
    if p is None or p.last_active is None or now is None:
        return 0.0
    days = max(0.0, (now - p.last_active).total_seconds() / 86400.0)
    return p.activity * math.exp(-days / ACTIVITY_DAYS)


def _decayed_acts(p: PersonState, now: datetime | None) -> float:
    if p.last_acted is None or now is None:
        return 0.0
    days = max(0.0, (now - p.last_acted).total_seconds() / 86400.0)
    return p.acting * math.exp(-days / ACTIVITY_DAYS)


def _target_popularity(topics: dict[str, float], y: PersonState) -> float:
    total = sum(topics.values())
    if total <= 0:
        return 0.0
    score = 0.0
    for tag, w in topics.items():
        mine = y.offers.get(tag, 0.0) + y.seeks.get(tag, 0.0) + y.declared.get(tag, 0.0)
        if mine:
            score += w * mine
    return math.log1p(score / total)


def matrix(rows: list[list[float]]) -> NDArray[np.float64]:
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))
