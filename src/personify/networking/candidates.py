"""Candidate people for one person, from several sources, each remembered for the explanation.

- ``graph``: friends of friends (people your contacts interacted with), by Adamic-Adar (a shared
  contact who knows few people counts more than a hub everyone knows);
- ``threads``: people in the same conversations (engaging with the same content);
- ``profile``: shared and complementary topics and goals (what you seek, they offer and back);
- ``community``: the most engaged people in your topics (popularity within your communities,
  the cold-start source);
- ``popular``: the most active people overall (when nothing is known about you).
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict

from personify.networking.state import NetworkState

SOURCES: tuple[str, ...] = ("graph", "threads", "profile", "community", "popular")


def _top(scores: dict[str, float], n: int) -> list[str]:
    return [p for p, _ in heapq.nlargest(n, scores.items(), key=lambda kv: (kv[1], kv[0]))]


def candidates(
    state: NetworkState, person: str, *, per_source: int = 60, popular: list[str] | None = None
) -> dict[str, set[str]]:
    """``candidate -> sources`` (the person and their existing partners are left out)."""
    out: dict[str, set[str]] = defaultdict(set)
    me = state.people.get(person)
    partners = me.partners if me is not None else set()

    def keep(pid: str) -> bool:
        return pid != person and pid not in partners

    if me is not None:
        fof: dict[str, float] = defaultdict(float)
        for z in partners:
            pz = state.people.get(z)
            if pz is None:
                continue
            weight = 1.0 / math.log(len(pz.partners)) if len(pz.partners) > 1 else 1.0
            for y in pz.partners:
                if keep(y):
                    fof[y] += weight
        for y in _top(fof, per_source):
            out[y].add("graph")

        threads: dict[str, float] = defaultdict(float)
        for t in me.threads:
            for y in state.thread_members.get(t, ()):
                if keep(y):
                    threads[y] += 1.0
        for y in _top(threads, per_source):
            out[y].add("threads")

        topics = me.topics()
        if topics:
            wanted: dict[str, float] = defaultdict(float)
            community: dict[str, float] = defaultdict(float)
            total = sum(topics.values())
            for tag, w in heapq.nlargest(8, topics.items(), key=lambda kv: kv[1]):
                seek = me.seeks.get(tag, 0.0) + me.declared.get(tag, 0.0)
                offer = me.offers.get(tag, 0.0) + me.declared.get(tag, 0.0)
                for y, engaged in state.tag_people.get(tag, {}).items():
                    if not keep(y):
                        continue
                    py = state.people.get(y)
                    community[y] += (w / total) * engaged
                    if py is not None:
                        wanted[y] += seek * py.offers.get(tag, 0.0) + offer * py.seeks.get(tag, 0.0)
            for y in _top(wanted, per_source):
                out[y].add("profile")
            for y in _top(community, per_source // 2):
                out[y].add("community")
    for y in (popular or [])[:per_source]:
        if keep(y):
            out[y].add("popular")
    return dict(out)


def popular_people(state: NetworkState, n: int = 100) -> list[str]:
    """Most active recent people: interactions weighted towards the latest activity."""
    now = state.now
    scores: dict[str, float] = {}
    for pid, p in state.people.items():
        activity = p.n_acts + p.n_received
        if activity == 0:
            continue
        age = (
            0.0
            if now is None or p.last_active is None
            else ((now - p.last_active).total_seconds() / 86400.0)
        )
        scores[pid] = activity / (1.0 + age / 14.0)
    return _top(scores, n)
