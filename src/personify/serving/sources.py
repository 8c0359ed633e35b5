"""The built-in candidate sources. The chain asks them in a configured order; each returns scored
candidates with a reason. Personal sources are skipped for users without personalization consent,
and the non-personal ones (trending, new, popular) are the fallbacks. Each is declared, with
what it needs and how the blend learns it, in :mod:`personify.serving.builtin_sources`."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from personify.domain.users import User
from personify.serving.bundle import ModelBundle
from personify.serving.catalog import CatalogSnapshot
from personify.serving.explanations import Reason
from personify.serving.request import RecommendationRequest
from personify.storage.online.port import (
    Interaction,
    OnlineState,
    UserState,
    context_segments,
)

HISTORY_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 1.5,
    "add_to_cart": 3.0,
    "like": 3.0,
    "share": 2.0,
    "rating": 2.0,
    "purchase": 4.0,
}
"""How much a recent interaction of each type pulls its neighbours (dislikes pull nothing)."""
HISTORY_HALF_LIFE_S = 3 * 86_400.0


@dataclass
class RequestScope:
    """Everything a source may read for one request."""

    tenant: str
    request: RecommendationRequest
    subject: str | None
    user: User | None
    user_state: UserState | None
    bundle: ModelBundle | None
    state: OnlineState | None
    catalog: CatalogSnapshot
    now: datetime
    personalized: bool
    warnings: list[str] = field(default_factory=list)
    shared: dict[tuple[str, int, str], list[Scored]] | None = None
    """Set by a caller composing several answers for one person at one moment (a page of
    rows): each source's candidates, by (source, n, filters), asked once for all of them."""


@dataclass(slots=True)
class Scored:
    item_id: str
    score: float
    reason: Reason


class CandidateSource(Protocol):
    name: str
    personal: bool

    def candidates(self, scope: RequestScope, n: int) -> list[Scored]: ...


def _weighted_history(
    interactions: Sequence[Interaction], now: datetime, limit: int = 50
) -> tuple[list[str], list[float], dict[str, str]]:
    """Item -> weight of the recent history, decayed by age relative to the newest interaction
    (so a returning user's old history still ranks its own recent part first)."""
    weights: dict[str, float] = {}
    kinds: dict[str, str] = {}
    window = interactions[: limit * 4]
    newest = max((i.timestamp for i in window), default=now)
    for inter in window:
        base = HISTORY_WEIGHTS.get(inter.type, 0.0)
        if base <= 0:
            continue
        age = max(0.0, (newest - inter.timestamp).total_seconds())
        weights[inter.item_id] = weights.get(inter.item_id, 0.0) + base * math.exp(
            -age * math.log(2) / HISTORY_HALF_LIFE_S
        )
        if inter.type == "purchase" or inter.item_id not in kinds:
            kinds[inter.item_id] = inter.type
        if len(weights) >= limit:
            break
    ids = list(weights)
    return ids, [weights[i] for i in ids], kinds


class CollaborativeSource:
    """The user model's list for a trained person (precomputed at training time) plus their
    newer interactions folded through the item neighbours; for anyone else, their recent
    history folded through the neighbours."""

    name = "collaborative"
    personal = True

    def candidates(self, scope: RequestScope, n: int) -> list[Scored]:
        if scope.bundle is None or scope.user_state is None:
            return []
        recent = scope.user_state.recent
        lists = scope.bundle.user_lists
        listed = lists.row(scope.subject) if lists is not None and scope.subject else None
        if lists is None or listed is None:
            return self._folded(scope, recent, n)
        fresh = [i for i in recent if i.timestamp.timestamp() > lists.trained_through]
        return self._listed(scope, listed, self._folded(scope, fresh, n), n)

    def _listed(
        self,
        scope: RequestScope,
        listed: tuple[NDArray[np.int32], NDArray[np.float32], NDArray[np.int32]],
        fresh: list[Scored],
        n: int,
    ) -> list[Scored]:
        """The list (scores relative to its best) merged with the fresh fold-in (relative to its
        best): a click since training counts as much as the whole trained history."""
        assert scope.bundle is not None and scope.user_state is not None
        items, scores, anchors = listed
        ids = scope.bundle.items.ids
        bought = scope.user_state.bought
        top = float(scores[0]) or 1.0
        out: dict[str, Scored] = {}
        for item, score, anchor in zip(items[:n].tolist(), scores[:n].tolist(),
                                       anchors[:n].tolist(), strict=True):
            value = score / top
            if anchor < 0:
                reason = Reason("people_like_you", self.name, value)
            else:
                anchor_id = ids[anchor]
                kind = "because_you_bought" if anchor_id in bought else "because_you_viewed"
                reason = Reason(kind, self.name, value,
                                {"item_id": anchor_id, "title": _title(scope.catalog, anchor_id)})
            out[ids[item]] = Scored(ids[item], value, reason)
        if fresh:
            best = max(s.score for s in fresh) or 1.0
            for s in fresh:
                value = s.score / best
                old = out.get(s.item_id)
                if old is None:
                    out[s.item_id] = Scored(s.item_id, value, replace(s.reason, weight=value))
                else:
                    reason = old.reason if old.score >= value else replace(s.reason, weight=value)
                    out[s.item_id] = Scored(s.item_id, old.score + value, reason)
            return heapq.nlargest(n, out.values(), key=lambda s: s.score)
        return list(out.values())

    def _folded(self, scope: RequestScope, interactions: Sequence[Interaction],
                n: int) -> list[Scored]:
        assert scope.bundle is not None
        ids, weights, kinds = _weighted_history(interactions, scope.now)
        if not ids:
            return []
        found, scores, best = scope.bundle.history_scores(ids, weights, n)
        out = []
        for item_id, score, pos in zip(found, scores, best, strict=True):
            anchor = ids[int(pos)]
            title = _title(scope.catalog, anchor)
            kind = "because_you_bought" if kinds.get(anchor) == "purchase" else "because_you_viewed"
            out.append(
                Scored(
                    item_id,
                    float(score),
                    Reason(kind, self.name, float(score), {"item_id": anchor, "title": title}),
                )
            )
        return out


class SessionSource:
    """Items that co-occur (live counters) or are similar (trained model) to the current visit."""

    name = "session"
    personal = True

    def candidates(self, scope: RequestScope, n: int) -> list[Scored]:
        if scope.user_state is None or not scope.user_state.session:
            return []
        session = [i.item_id for i in scope.user_state.session[:5]]
        scores: dict[str, tuple[float, str]] = {}
        for rank, anchor in enumerate(session):
            decay = 1.0 / (1 + rank)
            pairs: list[tuple[str, float]] = []
            if scope.state is not None:
                live = scope.state.neighbours(scope.tenant, anchor, n)
                top = max((s for _, s in live), default=1.0) or 1.0
                pairs += [(i, s / top) for i, s in live]
            if scope.bundle is not None:
                pairs += scope.bundle.similar(anchor, n)
            for item_id, s in pairs:
                value = decay * s
                old = scores.get(item_id)
                if old is None or value > old[0]:
                    scores[item_id] = (value + (old[0] if old else 0.0) * 0.5, anchor)
        ranked = sorted(scores.items(), key=lambda kv: -kv[1][0])[:n]
        return [
            Scored(
                i,
                s,
                Reason(
                    "in_your_session",
                    self.name,
                    s,
                    {"item_id": a, "title": _title(scope.catalog, a)},
                ),
            )
            for i, (s, a) in ranked
        ]


def interest_score(rank: int, popularity: float) -> float:
    """An item of the person's ``rank``-th interest (0 = strongest) whose popularity is
    ``popularity`` of the label's most popular item (also what the blend learns from)."""
    return (0.5 + 0.5 * popularity) / (1 + rank)


class InterestsSource:
    """Items whose categories / tags / title match declared interests or the categories of what
    the user recently engaged with."""

    name = "interests"
    personal = True

    def candidates(self, scope: RequestScope, n: int) -> list[Scored]:
        interests: list[str] = []
        if scope.user is not None:
            interests += [s.lower() for s in scope.user.profile.interests]
        if scope.user_state is not None:
            counts: dict[str, int] = {}
            for inter in scope.user_state.recent[:30]:
                item = scope.catalog.get(inter.item_id)
                for c in item.categories if item else ():
                    counts[c.lower()] = counts.get(c.lower(), 0) + 1
            interests += [c for c, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:3]]
        interests = list(dict.fromkeys(interests))
        if not interests:
            return []
        best: dict[str, tuple[float, str]] = {}
        for rank, interest in enumerate(interests[:8]):
            for item_id, p in self._top_of_label(scope, interest, n):
                score = interest_score(rank, p)
                old = best.get(item_id)
                if old is None or old[0] < score:
                    best[item_id] = (score, interest)
        top = heapq.nlargest(n, best.items(), key=lambda kv: kv[1][0])
        return [
            Scored(i, score, Reason("matches_interest", self.name, score, {"interest": interest}))
            for i, (score, interest) in top
        ]

    def _top_of_label(self, scope: RequestScope, label: str, n: int) -> list[tuple[str, float]]:
        """The label's most popular visible items with normalized popularity, cached per
        catalogue version and model version (labels hold thousands of items)."""
        key = (id(scope.catalog), scope.catalog.version,
               scope.bundle.version if scope.bundle is not None else "", label, n)
        cached = self._cache.get(key)
        if cached is None:
            ids = scope.catalog.with_label(label)
            pop = _popularity(scope, ids) if ids else {}
            cached = sorted(pop.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
            if len(self._cache) >= 4096:
                self._cache.clear()
            self._cache[key] = cached
        return cached

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int, str, str, int], list[tuple[str, float]]] = {}


SEGMENT_WEIGHTS: dict[str, float] = {"city": 1.0, "country": 0.8, "region": 0.8,
                                      "device": 0.8, "channel": 0.6, "daypart": 0.4}
"""How much an item's live popularity in each of the request's context segments counts,
relative to its top item there; the global ranking counts :data:`GLOBAL_TRENDING_WEIGHT`."""
GLOBAL_TRENDING_WEIGHT = 0.5


class TrendingSource:
    """Live decayed popularity per segment of the request's context — its city, country,
    device and part of the day (the online state's ``context_segments``) — and globally: each
    segment's ranking relative to its top item, weighted by :data:`SEGMENT_WEIGHTS` and summed,
    so what is popular here, on this device, at this time of day comes first."""

    name = "trending"
    personal = False

    def candidates(self, scope: RequestScope, n: int) -> list[Scored]:
        state = scope.state
        if state is None:
            return []
        context = scope.request.context
        location = context.location
        place = (location.city or location.country) if location is not None else None
        fields = getattr(getattr(state, "config", None), "context_segments", ("country",))
        totals: dict[str, float] = {}
        best: dict[str, tuple[float, Reason]] = {}

        def add(rows: list[tuple[str, float]], weight: float, reason: str,
                args: dict[str, str]) -> None:
            top = rows[0][1] if rows and rows[0][1] > 0 else 0.0
            if top <= 0:
                return
            for item_id, s in rows:
                part = weight * s / top
                totals[item_id] = totals.get(item_id, 0.0) + part
                if item_id not in best or best[item_id][0] < part:
                    best[item_id] = (part, Reason(reason, self.name, part, args))

        for kind, segment in context_segments(context, scope.now, fields):
            rows = state.trending(scope.tenant, n, segment=segment, now=scope.now)
            if kind in ("city", "country", "region") and place:
                add(rows, SEGMENT_WEIGHTS.get(kind, 0.5), "popular_in", {"place": place})
            else:
                add(rows, SEGMENT_WEIGHTS.get(kind, 0.5), "trending", {})
        add(state.trending(scope.tenant, n, now=scope.now), GLOBAL_TRENDING_WEIGHT,
            "trending", {})
        top = heapq.nlargest(n, totals.items(), key=lambda kv: (kv[1], kv[0]))
        return [Scored(item_id, score, best[item_id][1]) for item_id, score in top]


class NewItemsSource:
    """The newest items, to explore fresh catalogue entries."""

    name = "new_items"
    personal = False

    def candidates(self, scope: RequestScope, n: int) -> list[Scored]:
        liked: set[str] = set()
        if scope.personalized and scope.user_state is not None:
            for inter in scope.user_state.recent[:30]:
                item = scope.catalog.get(inter.item_id)
                liked.update(item.categories if item else ())
        out = []
        for rank, item in enumerate(scope.catalog.newest(n, now=scope.now)):
            score = 1.0 / (1 + rank)
            shared = sorted(set(item.categories) & liked)
            reason = (
                Reason("new_in_category", self.name, score, {"category": shared[0]})
                if shared
                else Reason("new_item", self.name, score)
            )
            out.append(Scored(item.item_id, score, reason))
        return out


class PopularSource:
    """Trained popularity; the last fallback so that every user gets an answer."""

    name = "popular"
    personal = False

    def candidates(self, scope: RequestScope, n: int) -> list[Scored]:
        pairs = scope.bundle.top_popular(n) if scope.bundle is not None else []
        if not pairs and scope.state is not None:
            pairs = scope.state.trending(scope.tenant, n, now=scope.now)
        if not pairs:
            pairs = [(i, 1.0 / (1 + r)) for r, i in enumerate(scope.catalog.ids()[:n])]
        kind = "popular" if scope.personalized else "not_personalized"
        return [Scored(i, s, Reason(kind, self.name, s)) for i, s in pairs]


def _title(catalog: CatalogSnapshot, item_id: str) -> str:
    item = catalog.get(item_id)
    return item.title if item is not None and item.title else item_id


def _popularity(scope: RequestScope, ids: Sequence[str]) -> dict[str, float]:
    if scope.bundle is None:
        return {i: 0.0 for i in ids}
    idx = scope.bundle.items.indices(list(ids))
    raw = {
        i: float(scope.bundle.popularity[j]) if j >= 0 else 0.0
        for i, j in zip(ids, idx, strict=True)
    }
    top = max(raw.values(), default=0.0) or 1.0
    return {i: v / top for i, v in raw.items()}
