"""The trained artifact the online chain serves from: item neighbours, decayed popularity and
blend weights, in one id space. Built offline by ``personify.jobs.training``; read-only here.

Serving never trains: personal scores come from folding the user's *current* history (from the
online state) through the item-item neighbour matrix, so a click changes the next answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.data.vocabulary import Vocabulary
from personify.serving.factors import FactorModel
from personify.serving.user_lists import UserLists


def default_source_weights() -> dict[str, float]:
    """Each registered source's hand-set weight (the learned blend overrides them)."""
    from personify.serving.source_registry import source_registry

    return source_registry().default_weights()


@dataclass
class ModelBundle:
    """One tenant's served model version."""

    version: str
    items: Vocabulary
    neighbours: sp.csr_matrix
    """items x items, row i holds the top-k most similar items of i with their similarity."""
    popularity: NDArray[np.float32]
    """Decayed interaction weight per item index at training time."""
    model_name: str = "rp3beta"
    params: dict[str, Any] = field(default_factory=dict)
    source_weights: dict[str, float] = field(default_factory=default_source_weights)
    metrics: dict[str, Any] = field(default_factory=dict)
    ranker: Any = None
    """An optional learned ranker (see ``personify.serving.ranking``)."""
    factors: FactorModel | None = None
    """Optional ALS item factors for the ``factors`` source (bundles saved before they existed
    unpickle without the attribute and read the class default, None)."""
    user_lists: UserLists | None = None
    """Optional per-person top lists of the user model, precomputed at training time (the
    ``collaborative`` source reads them and folds only newer interactions live)."""
    parts: dict[str, Any] | None = None
    """Trained state of registered sources, by source name (``SourceSpec.train``); None in
    bundles saved before sources could train parts."""

    def part(self, name: str) -> Any:
        """The trained part of source ``name`` (None when this bundle has none)."""
        return self.parts.get(name) if self.parts else None

    def provides(self, need: str) -> bool:
        """Whether this bundle has ``need``: a non-empty attribute or a source's part."""
        return getattr(self, need, None) is not None or self.part(need) is not None

    def history_scores(
        self, item_ids: Sequence[str], weights: Sequence[float], n: int
    ) -> tuple[list[str], NDArray[np.float32], NDArray[np.int64]]:
        """Top-``n`` items by summed neighbour similarity to a weighted history.

        Returns ids, scores and, per returned item, the position in ``item_ids`` of the history
        item contributing most (for "because you viewed X").
        """
        idx = self.items.indices(list(item_ids))
        keep = idx >= 0
        if not keep.any():
            return [], np.zeros(0, np.float32), np.zeros(0, np.int64)
        rows = idx[keep]
        w = np.asarray(weights, dtype=np.float32)[keep]
        positions = np.flatnonzero(keep)
        sub = self.neighbours[rows]
        total = np.asarray(sub.T @ w, dtype=np.float32).ravel()
        total[rows] = 0.0
        nz = np.flatnonzero(total > 0)
        if nz.size == 0:
            return [], np.zeros(0, np.float32), np.zeros(0, np.int64)
        k = min(n, nz.size)
        top = nz[np.argpartition(-total[nz], k - 1)[:k]]
        top = top[np.argsort(-total[top], kind="stable")]
        contrib = sub[:, top].toarray() * w[:, None]
        best = positions[np.argmax(contrib, axis=0)]
        return self.items.lookup(top), total[top], best.astype(np.int64)

    def history_affinity(
        self, history: Sequence[str], candidates: Sequence[str]
    ) -> NDArray[np.float32]:
        """Per candidate, its summed neighbour similarity to ``history`` (each item weighing
        1) divided by the best such sum over every item (0 for the history's own items and
        unknown ids): the score of :meth:`history_scores`, normalised, for a few items only."""
        out = np.zeros(len(candidates), np.float32)
        idx = self.items.indices(list(history))
        rows = idx[idx >= 0]
        if rows.size == 0 or not len(candidates):
            return out
        sub = self.neighbours[rows]
        total = np.asarray(sub.sum(axis=0), dtype=np.float32).ravel()
        total[rows] = 0.0
        top = float(total.max())
        if top <= 0:
            return out
        cand = self.items.indices(list(candidates))
        known = cand >= 0
        out[known] = total[cand[known]] / top
        return out

    def similar(self, item_id: str, n: int) -> list[tuple[str, float]]:
        i = self.items.get(item_id)
        if i < 0:
            return []
        row = self.neighbours.getrow(i)
        order = np.argsort(-row.data, kind="stable")[:n]
        return [(self.items.ids[int(row.indices[j])], float(row.data[j])) for j in order]

    def top_popular(self, n: int) -> list[tuple[str, float]]:
        if self.popularity.size == 0:
            return []
        k = min(n, self.popularity.size)
        top = np.argpartition(-self.popularity, k - 1)[:k]
        top = top[np.argsort(-self.popularity[top], kind="stable")]
        return [
            (self.items.ids[int(i)], float(self.popularity[i]))
            for i in top
            if self.popularity[i] > 0
        ]
