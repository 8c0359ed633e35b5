"""The ``session_knn`` source: V-SKNN (:class:`personify.algorithms.session.SessionKNN`) served.

Training (``personify train``, through the source registry) cuts every person's training log
into visits (a new visit after :data:`SESSION_GAP_S` without activity) and keeps the newest
:data:`MAX_SESSIONS` of them as the past sessions the model votes with. At request time the
current visit — the online state's ``session`` for a known person, or the interactions a
browser posts to ``POST /v1/recommendations/session`` — is matched against those sessions:
the ``k`` most similar (cosine over the visit's items, later items weighing more) vote for
their items. The session endpoint asks it for every visit when the served bundle has it; other
requests only when they name it (``sources: ["session_knn"]``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms.session import SessionKNN
from personify.data.interactions import Interactions
from personify.data.vocabulary import Vocabulary
from personify.serving.explanations import Reason
from personify.serving.source_registry import TrainingLog
from personify.serving.sources import RequestScope, Scored

SESSION_GAP_S = 30 * 60
"""A visit ends after this long without an interaction (as in the online state)."""
MAX_SESSIONS = 200_000
"""The newest past sessions kept (memory of the served bundle)."""
MIN_SESSIONS = 10
"""Fewer past sessions than this: no part (nothing to vote with)."""
VISIT_ITEMS = 20
"""The newest items of the current visit that are matched."""


@dataclass
class SessionNeighbours:
    """The fitted V-SKNN over past sessions, in the bundle's item id space."""

    items: Vocabulary
    model: SessionKNN
    sessions: int

    def recommend(self, visit: list[str], n: int) -> list[tuple[str, float]]:
        """The best ``n`` next items for a visit (item ids oldest first), without the visit's
        own items; scores normalised to the best one."""
        idx = [int(i) for i in self.items.indices(visit) if i >= 0]
        if not idx or n <= 0:
            return []
        m = self.model
        q = m._query([idx])
        qnorm = float(np.sqrt(q.multiply(q).sum()))
        overlap = sp.csr_matrix(q @ m.St_)
        cand, dots = overlap.indices, overlap.data
        if not len(cand) or qnorm <= 0:
            return []
        if len(cand) > m.sample_size:  # the most recent sessions (highest index)
            keep = np.argsort(-cand, kind="stable")[: m.sample_size]
            cand, dots = cand[keep], dots[keep]
        sims = dots / (qnorm * m.session_norms_[cand])
        if len(cand) > m.k:
            top = np.argpartition(-sims, m.k - 1)[: m.k]
            cand, sims = cand[top], sims[top]
        votes = sp.csr_matrix(sims.astype(np.float32)[None, :]) @ m.S_[cand]
        votes = sp.csr_matrix(votes)
        scores = dict(zip(votes.indices.tolist(), votes.data.tolist(), strict=True))
        for i in idx:
            scores.pop(i, None)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        if not ranked:
            return []
        best = ranked[0][1] or 1.0
        return [(self.items.ids[i], float(s / best)) for i, s in ranked if s > 0]


def visits(data: Interactions, gap_s: float = SESSION_GAP_S) -> Interactions:
    """The log with each person's visits as the "users" (a visit ends after ``gap_s`` without
    activity; without timestamps a person's whole history is one visit), visits numbered in
    order of their start, newest last (visits starting at the same second by person id: the
    order does not depend on the order the events were read in, and the Spark trainer numbers
    them alike)."""
    users = np.asarray(data.user_idx, dtype=np.int64)
    items = np.asarray(data.item_idx, dtype=np.int64)
    times = (np.asarray(data.timestamps, dtype=np.float64) if data.timestamps is not None
             else np.zeros(len(users)))
    order = np.lexsort((np.arange(len(users)), times, users))
    users, items, times = users[order], items[order], times[order]
    new = np.ones(len(users), dtype=bool)
    if len(users) > 1:
        new[1:] = (users[1:] != users[:-1]) | (times[1:] - times[:-1] > gap_s)
    visit = np.cumsum(new) - 1
    starts = times[new]
    person = person_order(data.users)[users[new]]
    rank = np.empty(len(starts), dtype=np.int64)
    rank[np.lexsort((person, starts))] = np.arange(len(starts))
    visit = rank[visit]
    labels = [f"s{v}" for v in visit.tolist()]
    vocabulary = Vocabulary([f"s{v}" for v in range(len(starts))])
    return Interactions.from_arrays(labels, data.items.lookup(items), None, times,
                                    users=vocabulary, items=data.items)


def person_order(users: Vocabulary) -> NDArray[np.int64]:
    """Each person's position when the ids are sorted (code point order, which is also the
    byte order of their UTF-8 that Spark sorts strings by)."""
    order = np.empty(len(users), dtype=np.int64)
    order[np.argsort(np.asarray(users.ids, dtype=object), kind="stable")] = np.arange(len(users))
    return order


def session_part(sessions: Interactions) -> SessionNeighbours | None:
    """V-SKNN fitted on past sessions (the "users" of ``sessions``, oldest first; None with
    fewer than :data:`MIN_SESSIONS`): the part both trainers store."""
    if sessions.n_users < MIN_SESSIONS:
        return None
    model = SessionKNN(k=100, sample_size=1000).fit(sessions)
    model.sequences_ = []  # serving needs only the session matrix
    return SessionNeighbours(sessions.items, model, sessions.n_users)


def train_session_knn(log: TrainingLog) -> SessionNeighbours | None:
    """V-SKNN over the newest :data:`MAX_SESSIONS` visits of the training log (None with
    fewer than :data:`MIN_SESSIONS`)."""
    data = log.data
    if data.timestamps is None or len(data.user_idx) == 0:
        return None
    sessions = visits(data)
    if sessions.n_users > MAX_SESSIONS:
        keep = sessions.user_idx >= sessions.n_users - MAX_SESSIONS
        newest = Vocabulary(sessions.users.ids[sessions.n_users - MAX_SESSIONS:])
        sessions = Interactions.from_arrays(
            sessions.users.lookup(sessions.user_idx[keep]),
            sessions.items.lookup(sessions.item_idx[keep]), None,
            None if sessions.timestamps is None else sessions.timestamps[keep],
            users=newest, items=data.items)
    return session_part(sessions)


class SessionKnnSource:
    """Items of the past visits most like the current one (V-SKNN; personal: the visit)."""

    name = "session_knn"
    personal = True

    def candidates(self, scope: RequestScope, n: int) -> list[Scored]:
        part = scope.bundle.part(self.name) if scope.bundle is not None else None
        if part is None or scope.user_state is None or not scope.user_state.session:
            return []
        visit = [i.item_id for i in reversed(scope.user_state.session[:VISIT_ITEMS])]
        anchor = visit[-1]
        item = scope.catalog.get(anchor)
        title = item.title if item is not None and item.title else anchor
        return [
            Scored(i, s, Reason("similar_visits", self.name, s,
                                {"item_id": anchor, "title": title}))
            for i, s in part.recommend(visit, n)
        ]
