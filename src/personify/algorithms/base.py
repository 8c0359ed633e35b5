"""The one small interface every recommendation model implements.

Conventions (as scikit-learn / implicit): ``__init__`` only stores hyper-parameters; ``fit``
returns ``self``; learned state ends with ``_``; use before ``fit`` raises ``NotFitted``.
Batch-first: ``recommend`` takes many users at once and returns two ``(n_users, n)`` arrays
(item indices, scores), padded with ``-1`` / ``-inf`` where fewer items qualify.

Example::

    model = EASE(l2=80.0).fit(train)
    ids, scores = model.recommend(np.arange(train.n_users), 20, exclude=train.matrix)
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO, Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.data.interactions import Interactions
from personify.domain.errors import NotFitted

IdArray = NDArray[np.int64]
ScoreArray = NDArray[np.float32]


class Recommender(ABC):
    """Base of every model. Subclasses implement ``fit`` and ``score`` (or ``recommend``)."""

    name: ClassVar[str] = "recommender"
    fitted_attribute: ClassVar[str] = "n_items_"

    @abstractmethod
    def fit(self, data: Interactions) -> Self:
        """Learn from ``data``; returns ``self``."""

    @abstractmethod
    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        """Dense scores ``(len(user_indices), n_items)``. ``history`` (rows aligned with
        ``user_indices``) overrides the training history, e.g. for fold-in of new events."""

    def check_fitted(self) -> None:
        if not hasattr(self, self.fitted_attribute):
            raise NotFitted(
                f"{type(self).__name__} is not fitted yet; call fit(interactions) first"
            )

    def recommend(
        self,
        user_indices: IdArray | list[int],
        n: int = 10,
        *,
        exclude: sp.csr_matrix | None = None,
        candidates: NDArray[np.int64] | None = None,
        history: sp.csr_matrix | None = None,
    ) -> tuple[IdArray, ScoreArray]:
        """Top-``n`` item indices and scores per user.

        ``exclude``: a users x items matrix (rows indexed by user index, e.g. the training
        matrix) whose non-zeros are never returned. ``candidates``: restrict to these items.
        """
        self.check_fitted()
        users = np.asarray(user_indices, dtype=np.int64)
        scores = np.asarray(self.score(users, history), dtype=np.float32)
        excluded = None if exclude is None else exclude[users]
        return top_n(scores, n, exclude=excluded, candidates=candidates)

    def similar_items(
        self, item_indices: IdArray | list[int], n: int = 10
    ) -> tuple[IdArray, ScoreArray]:
        """Top-``n`` most similar items per item (the item itself excluded)."""
        raise NotImplementedError(f"{type(self).__name__} does not provide similar_items")

    def save(self, file: str | Path | IO[bytes]) -> None:
        """Persist the fitted model (pickle of hyper-parameters and learned state)."""
        if isinstance(file, (str, Path)):
            with open(file, "wb") as fh:
                pickle.dump(self, fh, protocol=pickle.HIGHEST_PROTOCOL)
        else:
            pickle.dump(self, file, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(cls, file: str | Path | IO[bytes]) -> Self:
        if isinstance(file, (str, Path)):
            with open(file, "rb") as fh:
                model = pickle.load(fh)
        else:
            model = pickle.load(file)
        if not isinstance(model, cls):
            raise TypeError(f"{file!r} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters: the attributes that neither end nor start with ``_``."""
        return {
            k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")
        }

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def top_n(
    scores: NDArray[Any],
    n: int,
    *,
    exclude: sp.csr_matrix | None = None,
    candidates: NDArray[np.int64] | None = None,
) -> tuple[IdArray, ScoreArray]:
    """Row-wise top-``n`` of a dense score matrix, with exclusion and candidate restriction."""
    scores = np.array(scores, dtype=np.float32, copy=True)
    n_rows, n_items = scores.shape
    if candidates is not None:
        mask = np.ones(n_items, dtype=bool)
        mask[np.asarray(candidates, dtype=np.int64)] = False
        scores[:, mask] = -np.inf
    if exclude is not None:
        coo = sp.coo_matrix(exclude)
        scores[coo.row, coo.col] = -np.inf
    k = min(n, n_items)
    if k <= 0:
        return np.full((n_rows, 0), -1, np.int64), np.full((n_rows, 0), -np.inf, np.float32)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    top = np.take_along_axis(part_scores, order, axis=1)
    ids[~np.isfinite(top)] = -1
    if k < n:
        ids = np.pad(ids, ((0, 0), (0, n - k)), constant_values=-1)
        top = np.pad(top, ((0, 0), (0, n - k)), constant_values=-np.inf)
    return ids, top.astype(np.float32)
