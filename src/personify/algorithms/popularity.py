"""Popularity and trending: decayed counts, per-segment variants and new-item exploration.

``Popularity(half_life_days=7)`` is "trending"; ``segments={"user-1": "FR", ...}`` gives each
segment (e.g. country) its own ranking, shrunk towards the global one so small segments stay
sensible; ``new_items_days=14`` ranks items first seen within 14 days first (exploration).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms.base import IdArray, Recommender, ScoreArray, top_n
from personify.data.interactions import Interactions
from personify.domain.errors import ConfigurationError

DAY = 86_400.0


class Popularity(Recommender):
    """Items ranked by (time-decayed) summed positive weight, optionally per user segment."""

    name: ClassVar[str] = "popularity"
    fitted_attribute: ClassVar[str] = "scores_"

    def __init__(
        self,
        half_life_days: float | None = None,
        *,
        now: float | None = None,
        binary: bool = False,
        segments: Mapping[str, str] | None = None,
        segment_shrinkage: float = 50.0,
        new_items_days: float | None = None,
    ) -> None:
        self.half_life_days = half_life_days
        self.now = now
        self.binary = binary
        self.segments = dict(segments) if segments is not None else None
        self.segment_shrinkage = segment_shrinkage
        self.new_items_days = new_items_days

    def _event_weights(self, data: Interactions) -> NDArray[np.float64]:
        w = np.clip(np.asarray(data.weights, dtype=np.float64), 0, None)
        if self.binary:
            w = (w > 0).astype(np.float64)
        if self.half_life_days is not None:
            if self.half_life_days <= 0:
                raise ConfigurationError("half_life_days must be positive",
                                         field="half_life_days", accepted="> 0 or None")
            if data.timestamps is None:
                raise ConfigurationError("time decay needs event timestamps",
                                         field="half_life_days",
                                         accepted="None for interactions without timestamps")
            age = (self._now(data) - data.timestamps) / DAY
            w = w * np.exp2(-np.clip(age, 0, None) / self.half_life_days)
        return w

    def _now(self, data: Interactions) -> float:
        if self.now is not None:
            return float(self.now)
        return float(data.timestamps.max()) if data.timestamps is not None and len(
            data.timestamps) else 0.0

    def fit(self, data: Interactions) -> Self:
        w = self._event_weights(data)
        n_items = data.n_items
        counts = np.bincount(data.item_idx, weights=w, minlength=n_items)
        if not len(data.item_idx):  # built from a bare matrix
            counts = np.asarray(sp.csr_matrix(data.matrix).maximum(0).sum(axis=0)).ravel()
        self.scores_: NDArray[np.float32] = self._with_exploration(counts, data)
        self.n_items_ = n_items
        self.user_segment_ = np.full(data.n_users, -1, dtype=np.int64)
        self.segment_names_: list[str] = []
        self.segment_scores_ = np.zeros((0, n_items), dtype=np.float32)
        if self.segments:
            self._fit_segments(data, w, counts)
        return self

    def _with_exploration(self, counts: NDArray[Any], data: Interactions) -> NDArray[np.float32]:
        scores = np.asarray(counts, dtype=np.float64)
        if self.new_items_days is not None:
            if data.timestamps is None:
                raise ConfigurationError("new-item exploration needs event timestamps",
                                         field="new_items_days", accepted="None")
            first = np.full(data.n_items, np.inf)
            np.minimum.at(first, data.item_idx, data.timestamps)
            fresh = first >= self._now(data) - self.new_items_days * DAY
            scores = scores / (scores.max() + 1.0) + fresh.astype(np.float64)  # new items first
        return scores.astype(np.float32)

    def _fit_segments(self, data: Interactions, w: NDArray[np.float64],
                      counts: NDArray[Any]) -> None:
        assert self.segments is not None
        names = sorted(set(self.segments.values()))
        index = {name: k for k, name in enumerate(names)}
        seg_of_user = np.array(
            [index.get(self.segments.get(uid, ""), -1) for uid in data.users.ids], dtype=np.int64
        )
        seg = seg_of_user[data.user_idx]
        keep = seg >= 0
        table = np.zeros((len(names), data.n_items))
        np.add.at(table, (seg[keep], data.item_idx[keep]), w[keep])
        share = counts / max(counts.sum(), 1e-12)
        m = self.segment_shrinkage
        totals = table.sum(axis=1, keepdims=True)
        smoothed = (table + m * share[None, :]) / (totals + m)
        self.segment_names_ = names
        self.user_segment_ = seg_of_user
        self.segment_scores_ = np.vstack(
            [self._with_exploration(row, data) for row in smoothed]
        ) if names else self.segment_scores_

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        self.check_fitted()
        users = np.asarray(user_indices, dtype=np.int64)
        out = np.tile(self.scores_, (len(users), 1))
        if len(self.segment_names_):
            known = (users >= 0) & (users < len(self.user_segment_))
            seg = np.full(len(users), -1, dtype=np.int64)
            seg[known] = self.user_segment_[users[known]]
            has = seg >= 0
            out[has] = self.segment_scores_[seg[has]]
        return out

    def score_segment(self, segment: str) -> NDArray[np.float32]:
        """Scores of one segment by name (the global ranking for an unknown segment)."""
        self.check_fitted()
        if segment in self.segment_names_:
            return self.segment_scores_[self.segment_names_.index(segment)]
        return self.scores_

    def similar_items(self, item_indices: IdArray | list[int], n: int = 10
                      ) -> tuple[IdArray, ScoreArray]:
        """The most popular other items (popularity knows no item-item relation)."""
        self.check_fitted()
        items = np.asarray(item_indices, dtype=np.int64)
        scores = np.tile(self.scores_, (len(items), 1))
        scores[np.arange(len(items)), items] = -np.inf
        return top_n(scores, n)
