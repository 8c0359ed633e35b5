"""Per-person candidate lists precomputed at training time by the bundle's user model.

The best offline model (BSPM on Gowalla, ``docs/evaluation.md``) scores a person through the whole
item graph: too slow for a request, exact when done in batch. Training therefore scores every
trained person once and keeps their top ``k`` items with scores and, per item, the history item
that explains it best (through the item neighbours). Serving reads a list in microseconds and folds
only what the person did *after* the training cut-off through the item neighbours, so a click still
changes the very next answer.

People without a list (new since training, or beyond the cap) are served by the neighbour fold-in
alone. Every list is scored through everyone's data, so an erasure drops the lists of the served
version until the retrain it requests (``personify.privacy.model_influence``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from personify.data.vocabulary import Vocabulary


@dataclass
class UserLists:
    """Top-``k`` items per trained person (CSR layout over ``users``)."""

    model_name: str
    users: Vocabulary
    indptr: NDArray[np.int64]
    items: NDArray[np.int32]
    """Item indices in the bundle's item vocabulary, best first within a row."""
    scores: NDArray[np.float32]
    anchors: NDArray[np.int32]
    """Per entry, the history item (index) whose neighbours raise it most; -1 when none does."""
    trained_through: float
    """Epoch seconds of the newest training event: later interactions are folded in live."""

    def __post_init__(self) -> None:
        if len(self.indptr) != len(self.users) + 1:
            raise ValueError("indptr must have one entry per user plus one")
        if not (len(self.items) == len(self.scores) == len(self.anchors) == int(self.indptr[-1])):
            raise ValueError("items, scores and anchors must have indptr[-1] entries")

    def __len__(self) -> int:
        return len(self.users)

    def row(self, user_id: str) -> tuple[NDArray[np.int32], NDArray[np.float32],
                                         NDArray[np.int32]] | None:
        """(items, scores, anchors) of ``user_id``, best first; None without a list."""
        u = self.users.get(user_id)
        if u < 0:
            return None
        lo, hi = int(self.indptr[u]), int(self.indptr[u + 1])
        if lo == hi:
            return None
        return self.items[lo:hi], self.scores[lo:hi], self.anchors[lo:hi]

    @property
    def nbytes(self) -> int:
        return int(
            self.indptr.nbytes + self.items.nbytes + self.scores.nbytes + self.anchors.nbytes
        )


__all__ = ["UserLists"]
