"""Session-based next-item models for anonymous visitors: V-SKNN and item-to-item transitions.

Training data is an ``Interactions`` whose "users" are sessions and whose ``timestamps`` order
the views (``SessionLog.to_interactions`` builds one). At request time a model needs only the
current session's item sequence::

    model = SessionKNN(k=100).fit(train_sessions)
    ids, scores = model.recommend_for_session([12, 7, 33], n=20)
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms.base import IdArray, Recommender, ScoreArray, top_n
from personify.data.interactions import Interactions
from personify.domain.errors import ConfigurationError


def session_sequences(data: Interactions) -> list[NDArray[np.int64]]:
    """Each user's (session's) item indices in time order (file order breaks ties)."""
    users = np.asarray(data.user_idx, dtype=np.int64)
    items = np.asarray(data.item_idx, dtype=np.int64)
    if data.timestamps is not None:
        order = np.lexsort((np.arange(len(users)), data.timestamps, users))
    else:
        order = np.argsort(users, kind="stable")
    users, items = users[order], items[order]
    bounds = np.searchsorted(users, np.arange(data.n_users + 1))
    return [items[bounds[u]: bounds[u + 1]] for u in range(data.n_users)]


class SessionRecommender(Recommender):
    """A model that scores item sequences; training sessions are scored by their own sequence."""

    fitted_attribute: ClassVar[str] = "n_items_"

    def fit(self, data: Interactions) -> Self:
        self.sequences_ = session_sequences(data)
        self.n_items_ = data.n_items
        self._fit_sequences(self.sequences_, data.n_items)
        return self

    @abstractmethod
    def _fit_sequences(self, sequences: list[NDArray[np.int64]], n_items: int) -> None:
        """Learn from time-ordered item sequences."""

    @abstractmethod
    def score_sessions(self, sequences: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        """Dense ``(len(sequences), n_items)`` next-item scores."""

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        self.check_fitted()
        users = np.asarray(user_indices, dtype=np.int64)
        if history is not None:  # an unordered history: its items in index order
            rows = sp.csr_matrix(history)
            seqs = [rows.indices[rows.indptr[r]: rows.indptr[r + 1]][
                rows.data[rows.indptr[r]: rows.indptr[r + 1]] > 0].tolist()
                for r in range(rows.shape[0])]
        else:
            seqs = [self.sequences_[u].tolist() if 0 <= u < len(self.sequences_) else []
                    for u in users]
        return self.score_sessions(seqs)

    def recommend_for_session(
        self, item_indices: Sequence[int], n: int = 20, *, exclude_seen: bool = False
    ) -> tuple[IdArray, ScoreArray]:
        """Top-``n`` next items for one session (its items in the order they were viewed)."""
        ids, scores = self.recommend_sessions([item_indices], n, exclude_seen=exclude_seen)
        return ids[0], scores[0]

    def recommend_sessions(
        self, sessions: Sequence[Sequence[int]], n: int = 20, *, exclude_seen: bool = False
    ) -> tuple[IdArray, ScoreArray]:
        """Batch form of ``recommend_for_session``; items outside the catalogue are ignored."""
        self.check_fitted()
        clean = [[int(i) for i in s if 0 <= int(i) < self.n_items_] for s in sessions]
        scores = self.score_sessions(clean)
        exclude = None
        if exclude_seen:
            rows = np.repeat(np.arange(len(clean)), [len(s) for s in clean])
            cols = np.fromiter((i for s in clean for i in s), np.int64)
            exclude = sp.csr_matrix(
                (np.ones(len(cols), np.float32), (rows, cols)), shape=(len(clean), self.n_items_)
            )
        return top_n(scores, n, exclude=exclude)


def _sparse(
    rows: list[int], cols: list[int], vals: list[float], shape: tuple[int, int]
) -> sp.csr_matrix:
    """A CSR matrix from coordinate lists (duplicates summed)."""
    return sp.csr_matrix(
        (np.asarray(vals, np.float32), (np.asarray(rows, np.int64), np.asarray(cols, np.int64))),
        shape=shape,
    )


def _cat(parts: list[NDArray[Any]], dtype: type) -> NDArray[Any]:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def _binary_rows(sequences: Sequence[Sequence[int]], n_items: int) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    cols = np.fromiter((i for s in sequences for i in s), np.int64, len(rows))
    m = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(sequences), n_items)
    )
    m.data[:] = 1.0
    return m


class SessionKNN(SessionRecommender):
    """V-SKNN (Ludewig & Jannach 2018): the ``k`` most similar of the ``sample_size`` most recent
    past sessions sharing an item vote for their items; later items of the current session weigh
    more (linear decay), so the last click steers the recommendation."""

    name: ClassVar[str] = "sknn"

    def __init__(
        self, k: int = 100, *, sample_size: int = 1000, position_decay: bool = True
    ) -> None:
        self.k = k
        self.sample_size = sample_size
        self.position_decay = position_decay

    def _fit_sequences(self, sequences: list[NDArray[np.int64]], n_items: int) -> None:
        if self.k < 1 or self.sample_size < 1:
            raise ConfigurationError("k and sample_size must be positive", field="k",
                                     accepted="k >= 1, sample_size >= 1")
        self.S_ = _binary_rows([s.tolist() for s in sequences], n_items)
        self.St_ = sp.csr_matrix(self.S_.T)
        self.session_norms_ = np.sqrt(np.asarray(self.S_.sum(axis=1)).ravel()).astype(np.float32)
        # later sessions are more recent: sessions are indexed in order of first appearance

    def _query(self, sequences: Sequence[Sequence[int]]) -> sp.csr_matrix:
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for r, seq in enumerate(sequences):
            length = len(seq)
            weights: dict[int, float] = {}
            for pos, item in enumerate(seq):
                w = (pos + 1) / length if self.position_decay else 1.0
                weights[item] = max(weights.get(item, 0.0), w)
            rows.extend([r] * len(weights))
            cols.extend(weights)
            vals.extend(weights.values())
        return _sparse(rows, cols, vals, (len(sequences), self.n_items_))

    def score_sessions(self, sequences: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        self.check_fitted()
        q = self._query(sequences)
        qnorm = np.sqrt(np.asarray(q.multiply(q).sum(axis=1)).ravel())
        overlap = sp.csr_matrix(q @ self.St_)  # sessions x training sessions
        out = np.zeros((len(sequences), self.n_items_), dtype=np.float32)
        for r in range(overlap.shape[0]):
            cand = overlap.indices[overlap.indptr[r]: overlap.indptr[r + 1]]
            dots = overlap.data[overlap.indptr[r]: overlap.indptr[r + 1]]
            if not len(cand):
                continue
            if len(cand) > self.sample_size:  # the most recent sessions (highest index)
                keep = np.argsort(-cand, kind="stable")[: self.sample_size]
                cand, dots = cand[keep], dots[keep]
            sims = dots / (qnorm[r] * self.session_norms_[cand])
            if len(cand) > self.k:
                top = np.argpartition(-sims, self.k - 1)[: self.k]
                cand, sims = cand[top], sims[top]
            out[r] = np.asarray(sims @ self.S_[cand].toarray(), dtype=np.float32)
        return out

    def similar_items(
        self, item_indices: IdArray | list[int], n: int = 10
    ) -> tuple[IdArray, ScoreArray]:
        """Items that co-occur with each item in the past sessions most similar to it."""
        items = np.asarray(item_indices, dtype=np.int64)
        scores = self.score_sessions([[int(i)] for i in items])
        scores[scores <= 0] = -np.inf
        scores[np.arange(len(items)), items] = -np.inf
        return top_n(scores, n)


class MarkovTransitions(SessionRecommender):
    """Item-to-item transitions: how often item ``j`` follows ``i`` within ``window`` steps in a
    session (closer follow-ups count more), row-normalised; a session scores by its last
    ``history`` items with geometric ``decay``."""

    name: ClassVar[str] = "markov"

    def __init__(self, window: int = 3, *, history: int = 3, decay: float = 0.5) -> None:
        self.window = window
        self.history = history
        self.decay = decay

    def _fit_sequences(self, sequences: list[NDArray[np.int64]], n_items: int) -> None:
        if self.window < 1 or self.history < 1 or not 0 < self.decay <= 1:
            raise ConfigurationError(
                "window and history must be >= 1 and decay in (0, 1]",
                field="window", accepted="window >= 1, history >= 1, 0 < decay <= 1",
            )
        src, dst, w = [], [], []
        for seq in sequences:
            for gap in range(1, self.window + 1):
                if len(seq) <= gap:
                    break
                src.append(seq[:-gap])
                dst.append(seq[gap:])  # repeats (j == i) kept: re-views are common next items
                w.append(np.full(len(seq) - gap, 1.0 / gap, np.float32))
        t = sp.csr_matrix(
            (_cat(w, np.float32), (_cat(src, np.int64), _cat(dst, np.int64))),
            shape=(n_items, n_items),
        )
        t.sum_duplicates()
        sums = np.asarray(t.sum(axis=1)).ravel()
        inv = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
        self.T_ = sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ t)

    def score_sessions(self, sequences: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        self.check_fitted()
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for r, seq in enumerate(sequences):
            for age, item in enumerate(reversed(list(seq)[-self.history:])):
                rows.append(r)
                cols.append(item)
                vals.append(self.decay**age)
        q = _sparse(rows, cols, vals, (len(sequences), self.n_items_))
        return np.asarray((q @ self.T_).toarray(), dtype=np.float32)

    def similar_items(
        self, item_indices: IdArray | list[int], n: int = 10
    ) -> tuple[IdArray, ScoreArray]:
        """The items most often viewed right after each item."""
        self.check_fitted()
        items = np.asarray(item_indices, dtype=np.int64)
        rows = np.asarray(self.T_[items].toarray(), dtype=np.float32)
        rows[rows <= 0] = -np.inf
        rows[np.arange(len(items)), items] = -np.inf
        return top_n(rows, n)
