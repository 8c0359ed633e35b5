"""The training data every algorithm consumes: a user x item interaction matrix with vocabularies.

Built from plain arrays (``Interactions.from_arrays``) so that the data layer does not depend on
storage; ``personify.data.events`` converts domain events into these arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.data.vocabulary import Vocabulary


@dataclass
class Interactions:
    """Weighted implicit feedback.

    ``matrix`` is a CSR users x items matrix of summed weights (positive = preference;
    negative weights such as dislikes are kept so models may use them, most clip at zero).
    ``user_idx`` / ``item_idx`` / ``weights`` / ``timestamps`` keep the event-level log in the
    same index space for time-aware models (popularity decay, sessions, temporal splits).
    ``item_features`` holds optional per-item side data (text, categories, tags, price) keyed by
    item index, for content-based and hybrid models.
    """

    users: Vocabulary
    items: Vocabulary
    matrix: sp.csr_matrix
    user_idx: NDArray[np.int64]
    item_idx: NDArray[np.int64]
    weights: NDArray[np.float32]
    timestamps: NDArray[np.float64] | None = None
    item_features: dict[str, list[object]] = field(default_factory=dict)
    user_features: dict[str, list[object]] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @classmethod
    def from_arrays(
        cls,
        user_ids: Sequence[str],
        item_ids: Sequence[str],
        weights: Sequence[float] | NDArray[np.floating] | None = None,
        timestamps: Sequence[float] | NDArray[np.floating] | None = None,
        *,
        users: Vocabulary | None = None,
        items: Vocabulary | None = None,
    ) -> Interactions:
        """Build from parallel arrays. Given vocabularies fix the index space (ids outside them
        are dropped); otherwise vocabularies are built in order of first appearance."""
        users = users or Vocabulary(user_ids)
        items = items or Vocabulary(item_ids)
        u = users.indices(list(user_ids))
        i = items.indices(list(item_ids))
        w = (
            np.ones(len(u), dtype=np.float32)
            if weights is None
            else np.asarray(weights, dtype=np.float32)
        )
        t = None if timestamps is None else np.asarray(timestamps, dtype=np.float64)
        keep = (u >= 0) & (i >= 0)
        if not keep.all():
            u, i, w = u[keep], i[keep], w[keep]
            t = None if t is None else t[keep]
        matrix = sp.csr_matrix((w, (u, i)), shape=(len(users), len(items)), dtype=np.float32)
        matrix.sum_duplicates()
        return cls(users, items, matrix, u, i, w, t)

    def binary(self) -> sp.csr_matrix:
        """1 where the summed weight is positive, else absent."""
        m = self.matrix.copy()
        m.data = (m.data > 0).astype(np.float32)
        m.eliminate_zeros()
        return m

    def with_matrix(self, matrix: sp.csr_matrix) -> Interactions:
        """The same vocabularies and log with another matrix (e.g. a validation split's train)."""
        return Interactions(
            self.users,
            self.items,
            matrix,
            self.user_idx,
            self.item_idx,
            self.weights,
            self.timestamps,
            self.item_features,
            self.user_features,
        )
