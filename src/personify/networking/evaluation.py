"""Offline evaluation of people recommendations on a temporal split.

For every person active after the cut, rank other people; the positives are the people they
interact with after the cut (either direction) whom they had never interacted with before
(*new pairs only*). ``warm``: both people interacted before the cut, ranked among everyone who
did; ``cold``: at least one of the two had not, ranked among every registered person. The
reciprocal hit rate counts the people with at least one new pair interacting in *both*
directions after the cut and asks whether one of those is in their top ``k`` (ranked among every
registered person).

Baselines score every person in the universe: popularity (distinct partners before the cut),
common neighbours, Adamic-Adar, topic-profile cosine, and one-sided collaborative filtering
(RP3beta on the person x person graph: "people who interacted with your contacts"). Ties are
broken by popularity, then id, for every method alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from personify.algorithms.rp3beta import RP3beta
from personify.data.interactions import Interactions
from personify.data.vocabulary import Vocabulary
from personify.networking.recommender import PeopleRecommender
from personify.networking.state import Interaction, NetworkState, cosine

Ranker = Callable[[str, list[str], int], list[str]]
"""(query person, universe, k) -> top-k people."""


@dataclass(slots=True)
class TemporalTask:
    cut: datetime
    train: list[Interaction]
    warm: dict[str, set[str]] = field(default_factory=dict)
    cold: dict[str, set[str]] = field(default_factory=dict)
    reciprocal: dict[str, set[str]] = field(default_factory=dict)
    reciprocal_warm: dict[str, set[str]] = field(default_factory=dict)
    warm_universe: list[str] = field(default_factory=list)
    all_universe: list[str] = field(default_factory=list)


def temporal_task(
    interactions: Iterable[Interaction], cut: datetime, people: Iterable[str]
) -> TemporalTask:
    ordered = sorted(interactions, key=lambda x: x.timestamp)
    train = [x for x in ordered if x.timestamp < cut]
    test = [x for x in ordered if x.timestamp >= cut and x.actor != x.target]
    seen = {frozenset((x.actor, x.target)) for x in train}
    known = {p for x in train for p in (x.actor, x.target)}
    directed = {(x.actor, x.target) for x in test}
    task = TemporalTask(cut=cut, train=train)
    for a, b in directed:
        if frozenset((a, b)) in seen:
            continue
        both = (b, a) in directed
        warm = a in known and b in known
        for q, p in ((a, b), (b, a)):
            (task.warm if warm else task.cold).setdefault(q, set()).add(p)
            if both:
                task.reciprocal.setdefault(q, set()).add(p)
                if warm:
                    task.reciprocal_warm.setdefault(q, set()).add(p)
    task.warm_universe = sorted(known)
    task.all_universe = sorted(set(people) | known)
    return task


def ndcg(ranked: list[str], positives: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, p in enumerate(ranked[:k]) if p in positives)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(positives), k)))
    return dcg / ideal if ideal else 0.0


def recall(ranked: list[str], positives: set[str], k: int) -> float:
    return len(positives.intersection(ranked[:k])) / len(positives) if positives else 0.0


def bootstrap_interval(
    values: NDArray[np.float64], *, n: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the mean over people resampled with replacement."""
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return (float(lo), float(hi))


def bootstrap_ratio(
    ours: NDArray[np.float64], base: NDArray[np.float64], *, n: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Paired percentile interval of mean(ours) / mean(base) (same people in both)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(ours), size=(n, len(ours)))
    num, den = ours[idx].mean(axis=1), base[idx].mean(axis=1)
    ratios = np.divide(num, den, out=np.full(n, np.nan), where=den > 0)
    lo, hi = np.nanquantile(ratios, [0.025, 0.975])
    return (float(lo), float(hi))


# rankers --------------------------------------------------------------------------------------


def _top(
    scores: dict[str, float], tie: dict[str, float], universe: list[str], exclude: set[str], k: int
) -> list[str]:
    keyed = [(-scores.get(p, 0.0), -tie.get(p, 0.0), p) for p in universe if p not in exclude]
    keyed.sort()
    return [p for _, _, p in keyed[:k]]


class Baselines:
    """The comparison methods, all reading the same network state before the cut."""

    def __init__(self, state: NetworkState) -> None:
        self.state = state
        self.degree = {p: float(len(s.partners)) for p, s in state.people.items()}
        people = sorted(state.people)
        vocab = Vocabulary(people)
        users, items = [], []
        for p, s in state.people.items():
            for q in s.partners:
                users.append(p)
                items.append(q)
        graph = Interactions.from_arrays(users, items, users=vocab, items=vocab)
        self._vocab = vocab
        self._cf = RP3beta(k=100, alpha=1.0, beta=0.5).fit(graph) if users else None

    def _exclude(self, q: str) -> set[str]:
        s = self.state.people.get(q)
        return {q} | (s.partners if s is not None else set())

    def popularity(self, q: str, universe: list[str], k: int) -> list[str]:
        return _top({}, self.degree, universe, self._exclude(q), k)

    def common_neighbours(self, q: str, universe: list[str], k: int) -> list[str]:
        scores = {p: float(len(self.state.common_neighbours(q, p))) for p in self._two_hop(q)}
        return _top(scores, self.degree, universe, self._exclude(q), k)

    def adamic_adar(self, q: str, universe: list[str], k: int) -> list[str]:
        scores = {
            p: self.state.adamic_adar(self.state.common_neighbours(q, p)) for p in self._two_hop(q)
        }
        return _top(scores, self.degree, universe, self._exclude(q), k)

    def topic_similarity(self, q: str, universe: list[str], k: int) -> list[str]:
        me = self.state.people.get(q)
        mine = me.topics() if me is not None else {}
        scores = {p: cosine(mine, s.topics()) for p, s in self.state.people.items()} if mine else {}
        return _top(scores, self.degree, universe, self._exclude(q), k)

    def one_sided_cf(self, q: str, universe: list[str], k: int) -> list[str]:
        idx = self._vocab.get(q)
        scores: dict[str, float] = {}
        if self._cf is not None and idx >= 0:
            row = np.asarray(self._cf.score(np.asarray([idx], dtype=np.int64))).ravel()
            nz = np.flatnonzero(row > 0)
            scores = dict(zip(self._vocab.lookup(nz.tolist()), row[nz].tolist(), strict=True))
        return _top(scores, self.degree, universe, self._exclude(q), k)

    def _two_hop(self, q: str) -> set[str]:
        me = self.state.people.get(q)
        if me is None:
            return set()
        out: set[str] = set()
        for z in me.partners:
            s = self.state.people.get(z)
            if s is not None:
                out |= s.partners
        return out

    def rankers(self) -> dict[str, Ranker]:
        return {
            "popularity": self.popularity,
            "common_neighbours": self.common_neighbours,
            "adamic_adar": self.adamic_adar,
            "topic_similarity": self.topic_similarity,
            "one_sided_cf": self.one_sided_cf,
        }


def recommender_ranker(rec: PeopleRecommender) -> Ranker:
    def rank(q: str, universe: list[str], k: int) -> list[str]:
        allowed = set(universe)
        return [m.person_id for m in rec.recommend(q, k, allowed=allowed.__contains__)]

    return rank


@dataclass(slots=True)
class SettingResult:
    ndcg: NDArray[np.float64]
    recall: NDArray[np.float64]
    hit: NDArray[np.float64]


def evaluate(
    ranker: Ranker, queries: dict[str, set[str]], universe: list[str], k: int = 20
) -> SettingResult:
    """Per-person NDCG@k, Recall@k and hit@k, in the order of ``sorted(queries)``."""
    n, r, h = [], [], []
    for q in sorted(queries):
        ranked = ranker(q, universe, k)
        pos = queries[q]
        n.append(ndcg(ranked, pos, k))
        r.append(recall(ranked, pos, k))
        h.append(1.0 if pos.intersection(ranked[:k]) else 0.0)
    return SettingResult(np.asarray(n), np.asarray(r), np.asarray(h))
