"""People recommendations: candidates from every source, both directions scored, combined.

``mode``: ``reciprocal`` (both directions' predicted interest combined by the weighted geometric
mean the model learned, see :mod:`personify.networking.model`; the default and the served one),
``one_sided`` (only the asking person's predicted interest), ``product`` (both, multiplied) or
``harmonic`` (their harmonic mean): the last three are kept for the evaluation and the simulator.
The service and the benchmark build the recommender with :func:`serving_recommender`, so what is
evaluated is what is served.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Literal

from personify.networking.candidates import candidates, popular_people
from personify.networking.features import PairFeatures, directional, matrix
from personify.networking.model import DirectionalModel, harmonic, reciprocal
from personify.networking.state import NetworkState

Mode = Literal["reciprocal", "one_sided", "product", "harmonic"]
MODES: tuple[str, ...] = ("reciprocal", "one_sided", "product", "harmonic")


@dataclass(frozen=True, slots=True)
class PersonMatch:
    person_id: str
    score: float
    forward: float
    """predicted interest of the asking person in this one."""
    backward: float
    """predicted interest of this person in the asking one."""
    sources: tuple[str, ...]
    common_contacts: int = 0
    shared_threads: int = 0
    shared_topics: tuple[str, ...] = ()
    they_offer: tuple[str, ...] = ()
    """what the asking person seeks and this person offers."""
    they_seek: tuple[str, ...] = ()
    """what this person seeks and the asking person offers."""


def _overlap(a: dict[str, float], b: dict[str, float], n: int = 3) -> tuple[str, ...]:
    common = [(a[t] * b[t], t) for t in a if t in b]
    return tuple(t for _, t in heapq.nlargest(n, common))


Scored = list[tuple[float, float, float, str]]
"""(combined score, forward, backward, person), best first."""


@dataclass(slots=True)
class _Ranked:
    """One person's cached ranking at one state version, and the matches built from it so
    far (a match's explanation fields are read from the state once per version, not once per
    request)."""

    version: int
    scored: Scored
    found: dict[str, set[str]]
    matches: dict[str, PersonMatch] = field(default_factory=dict)


@dataclass(slots=True)
class PeopleRecommender:
    state: NetworkState
    model: DirectionalModel
    mode: Mode = "reciprocal"
    per_source: int = 60
    _popular: list[str] = field(default_factory=list)
    _popular_version: int = -1
    cache_size: int = 0
    """People whose ranked candidates are kept until the network changes (0: none). Only the
    ranking is kept: ``allowed`` (consent, discoverability, blocks) is asked on every call."""
    _ranked: dict[str, _Ranked] = field(default_factory=dict)

    def popular(self) -> list[str]:
        if self._popular_version != self.state.version:
            self._popular = popular_people(self.state, 200)
            self._popular_version = self.state.version
        return self._popular

    def score_pairs(self, person: str, others: list[str]) -> tuple[list[float], list[float]]:
        """Predicted interest ``person -> other`` and ``other -> person`` for each other."""
        if not others:
            return [], []
        rows: list[list[float]] = []
        for other in others:
            pair = PairFeatures(self.state, person, other)
            rows.append(directional(self.state, pair, True))
            rows.append(directional(self.state, pair, False))
        p = self.model.predict(matrix(rows))
        return p[0::2].tolist(), p[1::2].tolist()

    def _topics(self, person: str) -> dict[str, float]:
        p = self.state.people.get(person)
        return p.topics() if p is not None else {}

    def combine(self, forward: float, backward: float) -> float:
        if self.mode == "one_sided":
            return forward
        if self.mode == "product":
            return forward * backward
        if self.mode == "harmonic":
            return harmonic(forward, backward)
        return reciprocal(forward, backward, self.model.forward_share)

    def recommend(
        self,
        person: str,
        k: int = 20,
        *,
        exclude: Container[str] = frozenset(),
        allowed: Callable[[str], bool] | None = None,
    ) -> list[PersonMatch]:
        """Top ``k``. ``allowed`` (which may be costly: consent, profiles) is asked from the
        best-scored candidate down until ``k`` pass; popular people fill a short list."""
        cached = self._ranked.get(person) if self.cache_size and not exclude else None
        memo: dict[str, PersonMatch] | None = None
        if cached is not None and cached.version == self.state.version:
            scored, found, memo = cached.scored, dict(cached.found), cached.matches
        else:
            found = candidates(self.state, person, per_source=self.per_source,
                               popular=self.popular())
            scored = self._score(person, [p for p in found if p not in exclude])
            if self.cache_size and not exclude:
                if len(self._ranked) >= self.cache_size:
                    self._ranked.clear()
                entry = _Ranked(self.state.version, scored, dict(found))
                self._ranked[person] = entry
                memo = entry.matches
        out = self._take(person, scored, found, k, allowed, memo)
        if len(out) < k:
            me = self.state.people.get(person)
            partners = me.partners if me is not None else set()
            fill: list[str] = []
            for p in self.popular():
                if len(out) + len(fill) >= k:
                    break
                if (p != person and p not in found and p not in partners and p not in exclude
                        and (allowed is None or allowed(p))):
                    found[p] = {"popular"}
                    fill.append(p)
            extra = self._take(person, self._score(person, fill), found, k, None)
            out = sorted(out + extra, key=lambda m: (-m.score, m.person_id))
        return out

    def _score(self, person: str, pool: list[str]) -> Scored:
        forward, backward = self.score_pairs(person, pool)
        return sorted(
            (
                (self.combine(f, b), f, b, p)
                for p, f, b in zip(pool, forward, backward, strict=True)
            ),
            key=lambda t: (-t[0], t[3]),
        )

    def _take(self, person: str, scored: Scored, found: dict[str, set[str]], k: int,
              allowed: Callable[[str], bool] | None,
              memo: dict[str, PersonMatch] | None = None) -> list[PersonMatch]:
        out: list[PersonMatch] = []
        for s, f, b, p in scored:
            if allowed is None or allowed(p):
                match = memo.get(p) if memo is not None else None
                if match is None:
                    match = self._match(person, p, s, f, b, found[p])
                    if memo is not None:
                        memo[p] = match
                out.append(match)
                if len(out) >= k:
                    break
        return out

    def _match(
        self,
        person: str,
        other: str,
        score: float,
        forward: float,
        backward: float,
        sources: set[str],
    ) -> PersonMatch:
        me = self.state.people.get(person)
        them = self.state.people.get(other)
        if me is None or them is None:
            return PersonMatch(other, score, forward, backward, tuple(sorted(sources)))
        return PersonMatch(
            person_id=other,
            score=score,
            forward=forward,
            backward=backward,
            sources=tuple(sorted(sources)),
            common_contacts=len(self.state.common_neighbours(person, other)),
            shared_threads=self.state.shared_threads(person, other),
            shared_topics=_overlap(me.topics(), them.topics()),
            they_offer=_overlap(me.seeks, them.offers),
            they_seek=_overlap(them.seeks, me.offers),
        )


def serving_recommender(
    state: NetworkState, model: DirectionalModel, *, cache_size: int = 0
) -> PeopleRecommender:
    """The recommender the API serves (the reciprocal combination the model learned, every
    candidate source); the benchmark evaluates this same one."""
    return PeopleRecommender(state, model, mode="reciprocal", cache_size=cache_size)
