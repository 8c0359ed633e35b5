"""Hybrid and cold-start models.

``ContentToFactors`` places items in a collaborative space (truncated SVD item factors); items
without interactions (new items) get factors predicted from their TF-IDF text by a ridge
regression learned on the known items, so they can be recommended from day one.

``HybridRecommender`` blends several models' per-user z-scored scores with weights LEARNED on a
validation split carved from the training data (coordinate search on NDCG@k), separately for
"cold" users (few interactions, e.g. the first clicks of a new user) and warm ones. With
``validation="items"`` the validation holds out items instead, which teaches the blend how to
rank new items. New users with declared interests and a segment use ``recommend_new_user``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.linalg import lsqr, svds

from personify.algorithms._sparse import history_rows, positive_matrix
from personify.algorithms.base import IdArray, Recommender, ScoreArray, top_n
from personify.algorithms.blend import normalize_rows
from personify.algorithms.content import ContentModel
from personify.algorithms.itemknn import ItemKNN
from personify.algorithms.popularity import Popularity
from personify.data.interactions import Interactions
from personify.data.splits import Split, cold_start_items, validation_split
from personify.domain.errors import ConfigurationError, InvalidInput

ValidationMethod = Literal["temporal", "random", "items"]


class ContentToFactors(Recommender):
    """PureSVD item factors for known items, ridge-mapped TF-IDF factors for new ones."""

    name: ClassVar[str] = "content_factors"
    fitted_attribute: ClassVar[str] = "item_factors_"

    def __init__(
        self,
        factors: int = 64,
        l2: float = 1.0,
        *,
        binary: bool = True,
        content: ContentModel | None = None,
        seed: int = 0,
    ) -> None:
        self.factors = factors
        self.l2 = l2
        self.binary = binary
        self.content = content
        self.seed = seed

    def fit(self, data: Interactions) -> Self:
        if self.factors < 1 or self.l2 <= 0:
            raise ConfigurationError("factors must be >= 1 and l2 > 0", field="factors",
                                     accepted="factors >= 1, l2 > 0")
        x = positive_matrix(data, binary=self.binary)
        self.content_ = copy.deepcopy(self.content or ContentModel()).fit(data)
        k = max(1, min(self.factors, min(x.shape) - 1))
        rng = np.random.default_rng(self.seed)
        v0 = rng.random(min(x.shape))
        _, s, vt = svds(sp.csr_matrix(x, dtype=np.float64), k=k, v0=v0)
        v = (vt.T * np.sqrt(s)[None, :]).astype(np.float64)  # items x k
        warm = np.asarray(x.sum(axis=0)).ravel() > 0
        c = sp.csr_matrix(self.content_.item_vectors_, dtype=np.float64)
        damp = float(np.sqrt(self.l2))
        w = np.column_stack(
            [lsqr(c[warm], v[warm, j], damp=damp)[0] for j in range(v.shape[1])]
        ) if warm.any() else np.zeros((c.shape[1], v.shape[1]))
        mapped = np.asarray(c @ w)
        self.mapping_ = w.astype(np.float32)
        self.item_factors_ = np.where(warm[:, None], v, mapped).astype(np.float32)
        self.warm_ = warm
        self.X_ = x
        self.n_items_ = data.n_items
        return self

    def factors_for_new_items(self, item_features: Mapping[str, Sequence[object]]
                              ) -> NDArray[np.float32]:
        """Collaborative factors predicted from the text of items unknown at fit time."""
        self.check_fitted()
        return np.asarray(self.content_.item_vectors_for(item_features) @ self.mapping_,
                          dtype=np.float32)

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        self.check_fitted()
        rows = history_rows(self.X_, np.asarray(user_indices, np.int64), history,
                            binary=self.binary)
        users = np.asarray(rows @ self.item_factors_, dtype=np.float32)  # fold-in
        return users @ self.item_factors_.T

    def similar_items(self, item_indices: IdArray | list[int], n: int = 10
                      ) -> tuple[IdArray, ScoreArray]:
        self.check_fitted()
        items = np.asarray(item_indices, dtype=np.int64)
        f = self.item_factors_
        norms = np.linalg.norm(f, axis=1) + 1e-12
        sims = (f[items] / norms[items, None]) @ (f / norms[:, None]).T
        sims[np.arange(len(items)), items] = -np.inf
        return top_n(sims, n)


def default_components(data: Interactions) -> dict[str, Recommender]:
    """Item-kNN + popularity, plus content and content-mapped factors when items have text."""
    components: dict[str, Recommender] = {"itemknn": ItemKNN(), "popularity": Popularity()}
    if any(name in data.item_features for name in ("title", "description", "tags", "categories")):
        components["content"] = ContentModel()
        components["content_factors"] = ContentToFactors()
    return components


def _ndcg(scores: NDArray[np.float32], relevant: NDArray[np.bool_], k: int) -> float:
    """The training objective: mean binary NDCG@k of ranked scores; ``relevant`` is a dense
    boolean users x items matrix (rows with at least one relevant item)."""
    ids, _ = top_n(scores, k)
    hits = np.take_along_axis(relevant, np.maximum(ids, 0), axis=1) & (ids >= 0)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    n_rel = np.minimum(relevant.sum(axis=1), k)
    ideal = np.concatenate([[0.0], np.cumsum(disc)])[n_rel]
    return float(np.mean(np.divide((hits * disc).sum(axis=1), ideal, out=np.zeros(len(ideal)),
                                   where=ideal > 0)))


class HybridRecommender(Recommender):
    """A blend of component models whose weights are learned on a validation split."""

    name: ClassVar[str] = "hybrid"
    fitted_attribute: ClassVar[str] = "models_"

    def __init__(
        self,
        components: Mapping[str, Recommender] | None = None,
        *,
        validation: ValidationMethod = "temporal",
        validation_fraction: float = 0.2,
        k: int = 20,
        grid: Sequence[float] = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0),
        passes: int = 3,
        max_validation_users: int = 2000,
        cold_threshold: int = 3,
        min_segment_users: int = 30,
        seed: int = 0,
    ) -> None:
        self.components = dict(components) if components is not None else None
        self.validation = validation
        self.validation_fraction = validation_fraction
        self.k = k
        self.grid = tuple(grid)
        self.passes = passes
        self.max_validation_users = max_validation_users
        self.cold_threshold = cold_threshold
        self.min_segment_users = min_segment_users
        self.seed = seed

    def _templates(self, data: Interactions) -> dict[str, Recommender]:
        templates = self.components if self.components is not None else default_components(data)
        if not templates:
            raise ConfigurationError("a hybrid needs at least one component", field="components",
                                     accepted="a mapping of name -> unfitted model")
        return templates

    def _split(self, data: Interactions) -> Split:
        if self.validation == "items":
            return cold_start_items(data, self.validation_fraction, seed=self.seed)
        if self.validation in ("temporal", "random"):
            method: Literal["temporal", "random"] = (
                "temporal" if self.validation == "temporal" and data.timestamps is not None
                else "random"
            )
            return validation_split(data, self.validation_fraction, method=method, seed=self.seed)
        raise InvalidInput(f"unknown validation {self.validation!r}", field="validation",
                           accepted="temporal, random, items")

    def fit(self, data: Interactions) -> Self:
        templates = self._templates(data)
        split = self._split(data)
        inner = {name: copy.deepcopy(m).fit(split.train) for name, m in templates.items()}
        self.weights_, self.validation_ndcg_ = self._learn_weights(inner, split)
        self.models_ = {name: copy.deepcopy(m).fit(data) for name, m in templates.items()}
        self.X_ = positive_matrix(data, binary=True)
        self.n_items_ = data.n_items
        return self

    def _learn_weights(self, models: Mapping[str, Recommender], split: Split
                       ) -> tuple[dict[str, NDArray[np.float64]], dict[str, float]]:
        train = sp.csr_matrix(positive_matrix(split.train, binary=True))
        test = sp.csr_matrix(positive_matrix(split.test, binary=True))
        users = np.flatnonzero(np.diff(test.indptr) > 0)
        rng = np.random.default_rng(self.seed)
        if len(users) > self.max_validation_users:
            users = np.sort(rng.choice(users, self.max_validation_users, replace=False))
        names = list(models)
        uniform = np.ones(len(names))
        if not len(users):
            return {"warm": uniform, "cold": uniform}, {}
        stacked = np.stack([normalize_rows(models[n].score(users), "zscore") for n in names])
        mask = train[users]
        if self.validation == "items":  # rank only the held-out (new) items
            new = np.ones(train.shape[1], dtype=bool)
            new[np.unique(split.train.item_idx)] = False
            stacked[:, :, ~new] = -np.inf
        else:
            coo = mask.tocoo()
            stacked[:, coo.row, coo.col] = -np.inf
        n_train = np.diff(mask.indptr)
        weights: dict[str, NDArray[np.float64]] = {}
        scores: dict[str, float] = {}
        segments = {"cold": n_train <= self.cold_threshold, "warm": n_train > self.cold_threshold}
        everyone = self._search(stacked, test[users])
        for seg, rows in segments.items():
            if rows.sum() >= self.min_segment_users:
                weights[seg], scores[seg] = self._search(stacked[:, rows], test[users][rows])
            else:
                weights[seg], scores[seg] = everyone
        scores["all"] = everyone[1]
        return weights, scores

    def _search(self, stacked: NDArray[np.float32], relevant_rows: sp.csr_matrix
                ) -> tuple[NDArray[np.float64], float]:
        """Coordinate ascent over the weight grid, from uniform weights."""
        weights = np.ones(stacked.shape[0])
        relevant = relevant_rows.toarray() > 0
        finite = np.where(np.isfinite(stacked), stacked, 0.0)
        masked = ~np.isfinite(stacked[0])

        def objective(w: NDArray[np.float64]) -> float:
            if not w.any():
                return -1.0
            blend = np.tensordot(w, finite, axes=1)
            blend[masked] = -np.inf
            return _ndcg(blend.astype(np.float32), relevant, self.k)

        best = objective(weights)
        for _ in range(self.passes):
            improved = False
            for j in range(len(weights)):
                for value in self.grid:
                    trial = weights.copy()
                    trial[j] = value
                    score = objective(trial)
                    if score > best + 1e-9:
                        best, weights, improved = score, trial, True
            if not improved:
                break
        return weights, best

    def _blend(self, per_model: Sequence[NDArray[Any]], n_history: NDArray[np.int64]
               ) -> NDArray[np.float32]:
        cold = n_history <= self.cold_threshold
        out = np.zeros_like(np.asarray(per_model[0], dtype=np.float32))
        for j, scores in enumerate(per_model):
            z = normalize_rows(scores, "zscore")
            w = np.where(cold, self.weights_["cold"][j], self.weights_["warm"][j])
            out += w[:, None].astype(np.float32) * z
        return out

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        self.check_fitted()
        users = np.asarray(user_indices, dtype=np.int64)
        rows = history_rows(self.X_, users, history, binary=True)
        per_model = [m.score(users, history) for m in self.models_.values()]
        return self._blend(per_model, np.diff(sp.csr_matrix(rows).indptr))

    def recommend_new_user(
        self,
        n: int = 10,
        *,
        history_items: Sequence[int] = (),
        interests: str = "",
        segment: str | None = None,
    ) -> tuple[IdArray, ScoreArray]:
        """Top-``n`` for a user unknown at fit time: the first clicks, declared interests and a
        segment (e.g. country) feed the components that can use them."""
        self.check_fitted()
        items = np.asarray(list(history_items), dtype=np.int64)
        row = sp.csr_matrix((np.ones(len(items), np.float32), (np.zeros(len(items), np.int64),
                             items)), shape=(1, self.n_items_))
        per_model: list[NDArray[Any]] = []
        for model in self.models_.values():
            if isinstance(model, ContentModel):
                per_model.append(model.score_new_users([interests], row))
            elif isinstance(model, Popularity) and segment is not None:
                per_model.append(model.score_segment(segment)[None, :])
            else:
                per_model.append(model.score(np.array([-1]), row))
        scores = self._blend(per_model, np.array([len(items)]))
        ids, top = top_n(scores, n, exclude=row if len(items) else None)
        return ids[0], top[0]

    def similar_items(self, item_indices: IdArray | list[int], n: int = 10
                      ) -> tuple[IdArray, ScoreArray]:
        """Similar items from the first component that provides them (collaborative first)."""
        self.check_fitted()
        last: Exception | None = None
        for model in self.models_.values():
            try:
                return model.similar_items(item_indices, n)
            except NotImplementedError as exc:
                last = exc
        raise NotImplementedError("no component provides similar_items") from last
