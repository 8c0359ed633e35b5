"""The network as the recommender sees it: who acted towards whom, in which threads, on which
topics, and what each person offers and seeks. Built from interactions in time order and updated
one interaction at a time (so a connection accepted now changes the next answer).

Directions matter: an interaction ``actor -> target`` means the actor chose to act towards the
target (answered their question, commented on their post, sent them a request, accepted theirs).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

TagWeights = dict[str, float]
ACTIVITY_DAYS = 14.0


@dataclass(frozen=True, slots=True)
class Interaction:
    """One directed person -> person interaction. ``offered`` is True when the actor offered
    help on the thread's topics (an answer), False when they asked or discussed (a comment on
    an answer, a question); ``thread`` groups interactions of one conversation."""

    actor: str
    target: str
    timestamp: datetime
    kind: str = "interaction"
    thread: str | None = None
    tags: tuple[str, ...] = ()
    offered: bool | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """An explicit answer to a request: ``actor`` (the person asked: the recipient of a
    connection request or an introduction) accepted or declined ``target`` (who asked). The
    strongest label of ``actor``'s interest in ``target`` the network has."""

    actor: str
    target: str
    timestamp: datetime
    accepted: bool


@dataclass(slots=True)
class PersonState:
    out: dict[str, int] = field(default_factory=dict)
    """people this person acted towards -> times."""
    inn: dict[str, int] = field(default_factory=dict)
    """people who acted towards this person -> times."""
    threads: set[str] = field(default_factory=set)
    offers: TagWeights = field(default_factory=dict)
    """topics (and goals such as ``mentoring``) this person offers help on."""
    seeks: TagWeights = field(default_factory=dict)
    """topics (and goals) this person asks about or looks for."""
    declared: TagWeights = field(default_factory=dict)
    """topics from the profile (skills, interests, about-me matched against the topic list)."""
    last_active: datetime | None = None
    n_acts: int = 0
    n_received: int = 0
    activity: float = 0.0
    acting: float = 0.0
    """acts towards others (answers, replies, requests) decayed with ``ACTIVITY_DAYS``, as of
    ``last_acted``: who is helping people *now*."""
    last_acted: datetime | None = None
    links: set[str] = field(default_factory=set)
    """everyone this person interacted with, either direction (kept with ``out`` / ``inn``)."""
    _topics: TagWeights | None = None
    _top: TagWeights | None = None
    _norms: dict[int, float] = field(default_factory=dict)
    """interactions (both directions) decayed with ``ACTIVITY_DAYS``, as of ``last_active``."""

    @property
    def partners(self) -> set[str]:
        """Read-only view of :attr:`links`."""
        return self.links

    def top_topics(self, n: int = 10) -> TagWeights:
        if self._top is None:
            topics = self.topics()
            self._top = dict(sorted(topics.items(), key=lambda kv: (-kv[1], kv[0]))[:n])
        return self._top

    def norm(self, vec: TagWeights) -> float:
        """Euclidean norm of one of this person's vectors (cached until :meth:`changed`)."""
        key = id(vec)
        value = self._norms.get(key)
        if value is None:
            value = self._norms[key] = _norm(vec)
        return value

    def topics(self) -> TagWeights:
        """Everything this person is about: offered, sought and declared topics (cached until
        :meth:`changed`; callers must not modify it)."""
        if self._topics is None:
            merged: TagWeights = dict(self.declared)
            for source in (self.offers, self.seeks):
                for tag, w in source.items():
                    merged[tag] = merged.get(tag, 0.0) + w
            self._topics = merged
        return self._topics

    def changed(self) -> None:
        self._topics = None
        self._top = None
        self._norms.clear()


def _norm(vec: TagWeights) -> float:
    return math.sqrt(sum(w * w for w in vec.values()))


def cosine(
    a: TagWeights, b: TagWeights, norm_a: float | None = None, norm_b: float | None = None
) -> float:
    if not a or not b:
        return 0.0
    small, big = (a, b) if len(a) <= len(b) else (b, a)
    dot = 0.0
    for t, w in small.items():
        v = big.get(t)
        if v is not None:
            dot += w * v
    if dot == 0.0:
        return 0.0
    return dot / ((norm_a or _norm(a)) * (norm_b or _norm(b)))


def person_cosine(pa: PersonState, a: TagWeights, pb: PersonState, b: TagWeights) -> float:
    """Cosine of two people's vectors with their cached norms."""
    if not a or not b:
        return 0.0
    return cosine(a, b, pa.norm(a), pb.norm(b))


@dataclass(slots=True)
class FeatureCache:
    version: int = -1
    values: dict[int, tuple[float, ...]] = field(default_factory=dict)


class NetworkState:
    """Adjacency, threads, topic profiles and activity of every person seen."""

    def __init__(self) -> None:
        self.people: dict[str, PersonState] = {}
        self.thread_members: dict[str, set[str]] = defaultdict(set)
        self.tag_people: dict[str, dict[str, float]] = defaultdict(dict)
        """topic -> person -> how much they are engaged in it (for community popularity)."""
        self.now: datetime | None = None
        self.version = 0
        self.feature_cache = FeatureCache()
        """Bumped on every change (caches of derived lists compare it)."""

    def person(self, person_id: str) -> PersonState:
        state = self.people.get(person_id)
        if state is None:
            state = self.people[person_id] = PersonState()
        return state

    def known(self, person_id: str) -> bool:
        state = self.people.get(person_id)
        return state is not None and (state.n_acts + state.n_received) > 0

    def add(self, x: Interaction) -> None:
        if x.actor == x.target:
            return
        self.version += 1
        a = self.person(x.actor)
        b = self.person(x.target)
        a.out[x.target] = a.out.get(x.target, 0) + 1
        b.inn[x.actor] = b.inn.get(x.actor, 0) + 1
        a.links.add(x.target)
        b.links.add(x.actor)
        a.n_acts += 1
        b.n_received += 1
        if a.last_acted is None:
            a.acting, a.last_acted = 1.0, x.timestamp
        elif x.timestamp >= a.last_acted:
            days = (x.timestamp - a.last_acted).total_seconds() / 86400.0
            a.acting = a.acting * math.exp(-days / ACTIVITY_DAYS) + 1.0
            a.last_acted = x.timestamp
        else:
            a.acting += 1.0
        for p in (a, b):
            if p.last_active is None:
                p.activity = 1.0
                p.last_active = x.timestamp
            elif x.timestamp >= p.last_active:
                days = (x.timestamp - p.last_active).total_seconds() / 86400.0
                p.activity = p.activity * math.exp(-days / ACTIVITY_DAYS) + 1.0
                p.last_active = x.timestamp
            else:
                p.activity += 1.0  # out of order: counted at the latest time
        if self.now is None or x.timestamp > self.now:
            self.now = x.timestamp
        if x.thread is not None:
            a.threads.add(x.thread)
            b.threads.add(x.thread)
            self.thread_members[x.thread].update((x.actor, x.target))
        if x.tags:
            a.changed()
            b.changed()
            share = 1.0 / len(x.tags)
            # An answer: the actor offers, the target (the asker) seeks. A comment on an answer:
            # the actor seeks what the answer's author offered. Unknown: both discuss the topic.
            giver: PersonState | None = None
            taker: PersonState | None = None
            if x.offered is True:
                giver, taker = a, b
            elif x.offered is False:
                giver, taker = b, a
            for tag in x.tags:
                if giver is not None and taker is not None:
                    giver.offers[tag] = giver.offers.get(tag, 0.0) + share
                    taker.seeks[tag] = taker.seeks.get(tag, 0.0) + share
                else:
                    a.declared[tag] = a.declared.get(tag, 0.0) + share
                    b.declared[tag] = b.declared.get(tag, 0.0) + share
                for pid in (x.actor, x.target):
                    people = self.tag_people[tag]
                    people[pid] = people.get(pid, 0.0) + share

    def declare(
        self,
        person_id: str,
        topics: TagWeights,
        *,
        offers: TagWeights | None = None,
        seeks: TagWeights | None = None,
    ) -> None:
        """Profile topics and goals (replacing the declared ones; learned ones stay)."""
        p = self.person(person_id)
        p.declared = dict(topics)
        p.changed()
        for target, extra in ((p.offers, offers), (p.seeks, seeks)):
            for tag, w in (extra or {}).items():
                target[tag] = max(target.get(tag, 0.0), w)
        for tag, w in p.topics().items():
            people = self.tag_people[tag]
            people[person_id] = max(people.get(person_id, 0.0), w)
        self.version += 1

    def forget(self, person_id: str) -> None:
        """Drop a person and every edge to them (erasure)."""
        p = self.people.pop(person_id, None)
        if p is None:
            return
        self.version += 1
        for other in p.links:
            o = self.people.get(other)
            if o is not None:
                o.inn.pop(person_id, None)
                o.out.pop(person_id, None)
                o.links.discard(person_id)
        for thread in p.threads:
            self.thread_members[thread].discard(person_id)
        for people in self.tag_people.values():
            people.pop(person_id, None)

    # graph quantities ---------------------------------------------------------------------

    def activity(self, person_id: str) -> float:
        """Decayed interaction count as of the latest interaction seen (``now``)."""
        p = self.people.get(person_id)
        if p is None or p.last_active is None or self.now is None:
            return 0.0
        days = max(0.0, (self.now - p.last_active).total_seconds() / 86400.0)
        return p.activity * math.exp(-days / ACTIVITY_DAYS)

    def degree(self, person_id: str) -> int:
        p = self.people.get(person_id)
        return 0 if p is None else len(p.partners)

    def common_neighbours(self, a: str, b: str) -> set[str]:
        pa, pb = self.people.get(a), self.people.get(b)
        if pa is None or pb is None:
            return set()
        return pa.partners & pb.partners

    def adamic_adar(self, common: set[str]) -> float:
        total = 0.0
        for z in common:
            d = self.degree(z)
            if d > 1:
                total += 1.0 / math.log(d)
        return total

    def shared_threads(self, a: str, b: str) -> int:
        pa, pb = self.people.get(a), self.people.get(b)
        if pa is None or pb is None:
            return 0
        small, big = (
            (pa.threads, pb.threads)
            if len(pa.threads) < len(pb.threads)
            else (pb.threads, pa.threads)
        )
        return sum(1 for t in small if t in big)


@dataclass(frozen=True, slots=True)
class Profile:
    """What a person declares: topics (skills, interests) and goals they offer or seek
    (``mentoring``, ``co-author``, a topic they can help with)."""

    topics: TagWeights = field(default_factory=dict)
    offers: TagWeights = field(default_factory=dict)
    seeks: TagWeights = field(default_factory=dict)


def build_state(
    interactions: list[Interaction], profiles: dict[str, Profile] | None = None
) -> NetworkState:
    state = NetworkState()
    for person_id, profile in (profiles or {}).items():
        state.declare(person_id, profile.topics, offers=profile.offers, seeks=profile.seeks)
    for x in interactions:
        state.add(x)
    return state
