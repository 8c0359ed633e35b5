"""The random baseline: a seeded, reproducible uniformly random ranking per user."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms.base import IdArray, Recommender, ScoreArray, top_n
from personify.data.interactions import Interactions


class RandomItems(Recommender):
    """Scores drawn from a generator seeded by ``(seed, user)``: the same user, the same list."""

    name: ClassVar[str] = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, data: Interactions) -> Self:
        self.n_items_ = data.n_items
        return self

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        self.check_fitted()
        return self._draw(np.asarray(user_indices, dtype=np.int64), stream=0)

    def _draw(self, keys: IdArray, stream: int) -> NDArray[np.float32]:
        out = np.empty((len(keys), self.n_items_), dtype=np.float32)
        for row, key in enumerate(keys):
            rng = np.random.default_rng([abs(self.seed), stream, int(key)])
            out[row] = rng.random(self.n_items_, dtype=np.float32)
        return out

    def similar_items(self, item_indices: IdArray | list[int], n: int = 10
                      ) -> tuple[IdArray, ScoreArray]:
        self.check_fitted()
        items = np.asarray(item_indices, dtype=np.int64)
        scores = self._draw(items, stream=1)
        scores[np.arange(len(items)), items] = -np.inf
        return top_n(scores, n)
