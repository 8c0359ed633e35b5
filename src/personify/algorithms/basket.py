"""E-commerce basket models: "buy it again" (repeat purchases) and "frequently bought together".

An order (basket) is the set of one user's events that share a timestamp, or, with
``basket_gap_seconds > 0``, follow each other within that gap; Online Retail invoices carry one
timestamp each, so its baskets are exactly its invoices. Without timestamps a user's whole
history is one basket.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms._sparse import history_rows, topk_rows
from personify.algorithms.base import IdArray, Recommender, ScoreArray, top_n
from personify.data.interactions import Interactions
from personify.domain.errors import ConfigurationError

DAY = 86_400.0


def basket_ids(data: Interactions, gap_seconds: float = 0.0) -> NDArray[np.int64]:
    """A basket number per event (positive-weight events only are meaningful): consecutive events
    of one user at most ``gap_seconds`` apart share a basket."""
    n = len(data.user_idx)
    if n == 0:
        return np.zeros(0, np.int64)
    users = np.asarray(data.user_idx, dtype=np.int64)
    times = np.zeros(n) if data.timestamps is None else np.asarray(data.timestamps, np.float64)
    order = np.lexsort((times, users))
    u, t = users[order], times[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (u[1:] != u[:-1]) | (t[1:] - t[:-1] > gap_seconds)
    ids = np.empty(n, dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids


def repeat_propensity(buyers: NDArray[Any], repeaters: NDArray[Any], prior: float = 2.0
                      ) -> NDArray[np.float32]:
    """Per item, the share of its buyers who bought it in two or more baskets, shrunk towards
    the overall share by ``prior`` pseudo-buyers (also the Spark trainer's formula)."""
    buyers = np.asarray(buyers, dtype=np.float64)
    repeaters = np.asarray(repeaters, dtype=np.float64)
    overall = repeaters.sum() / max(buyers.sum(), 1)
    return ((repeaters + prior * overall) / (buyers + prior)).astype(np.float32)


def rule_scores(
    together: NDArray[Any], support_i: NDArray[Any], support_j: NDArray[Any], n_baskets: int,
    *, metric: str = "confidence", shrink: float = 10.0,
) -> NDArray[np.float32]:
    """The score of rules ``i -> j`` from the baskets holding both (``together``) and each
    item's number of baskets: shrunk confidence, lift or cosine (also the Spark trainer's)."""
    c = np.asarray(together, dtype=np.float32)
    n_i = np.asarray(support_i, dtype=np.float32)
    n_j = np.asarray(support_j, dtype=np.float32)
    if metric == "confidence":
        vals = c / (n_i + shrink)
    elif metric == "lift":
        vals = c * n_baskets / (n_i * n_j)
    else:
        vals = c / (np.sqrt(n_i * n_j) + shrink)
    return np.asarray(vals, dtype=np.float32)


class BuyItAgain(Recommender):
    """Repeat-purchase scores: recency-decayed purchase frequency of the user times the item's
    smoothed repeat propensity (the share of its buyers who bought it in two or more baskets)."""

    name: ClassVar[str] = "buy_again"
    fitted_attribute: ClassVar[str] = "freq_"

    def __init__(
        self,
        half_life_days: float | None = 60.0,
        *,
        now: float | None = None,
        basket_gap_seconds: float = 0.0,
        propensity_prior: float = 2.0,
    ) -> None:
        self.half_life_days = half_life_days
        self.now = now
        self.basket_gap_seconds = basket_gap_seconds
        self.propensity_prior = propensity_prior

    def fit(self, data: Interactions) -> Self:
        if self.half_life_days is not None and self.half_life_days <= 0:
            raise ConfigurationError("half_life_days must be positive", field="half_life_days",
                                     accepted="> 0 or None")
        positive = np.asarray(data.weights) > 0
        users = np.asarray(data.user_idx)[positive]
        items = np.asarray(data.item_idx)[positive]
        baskets = basket_ids(data, self.basket_gap_seconds)[positive]
        # one count per (basket, item): quantity lines of the same order are not repeats
        _, first = np.unique(baskets * max(data.n_items, 1) + items, return_index=True)
        users, items = users[first], items[first]
        decay = np.ones(len(first))
        if self.half_life_days is not None and data.timestamps is not None and len(first):
            stamps = np.asarray(data.timestamps, np.float64)[positive][first]
            now = float(self.now) if self.now is not None else float(stamps.max())
            decay = np.exp2(-np.clip(now - stamps, 0, None) / DAY / self.half_life_days)
        shape = (data.n_users, data.n_items)
        self.freq_ = sp.csr_matrix((decay.astype(np.float32), (users, items)), shape=shape)
        counts = sp.csr_matrix((np.ones(len(first), np.float32), (users, items)), shape=shape)
        buyers = np.asarray((counts > 0).sum(axis=0)).ravel()
        repeaters = np.asarray((counts > 1).sum(axis=0)).ravel()
        self.propensity_ = repeat_propensity(buyers, repeaters, self.propensity_prior)
        self.n_items_ = data.n_items
        return self

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        self.check_fitted()
        users = np.asarray(user_indices, dtype=np.int64)
        rows = history_rows(self.freq_, users, history, binary=False)
        return np.asarray(rows.multiply(self.propensity_[None, :]).toarray(), dtype=np.float32)

    def similar_items(
        self, item_indices: IdArray | list[int], n: int = 10
    ) -> tuple[IdArray, ScoreArray]:
        """Items with the same buyers (cosine of the decayed purchase columns)."""
        self.check_fitted()
        items = np.asarray(item_indices, dtype=np.int64)
        cols = sp.csc_matrix(self.freq_)
        norms = np.sqrt(np.asarray(cols.multiply(cols).sum(axis=0)).ravel()) + 1e-12
        sims = np.asarray((cols[:, items].T @ cols).toarray(), dtype=np.float32)
        sims /= norms[items, None] * norms[None, :]
        sims[sims <= 0] = -np.inf
        sims[np.arange(len(items)), items] = -np.inf
        return top_n(sims, n)


class FrequentlyBoughtTogether(Recommender):
    """Basket co-occurrence association rules ``i -> j`` scored by shrunk confidence
    ``c_ij / (n_i + shrink)``, lift ``c_ij N / (n_i n_j)`` or cosine; rules with fewer than
    ``min_support`` shared baskets are dropped and each item keeps its ``neighbors`` best."""

    name: ClassVar[str] = "fbt"
    fitted_attribute: ClassVar[str] = "rules_"

    def __init__(
        self,
        metric: Literal["confidence", "lift", "cosine"] = "confidence",
        *,
        min_support: int = 2,
        shrink: float = 10.0,
        neighbors: int = 200,
        basket_gap_seconds: float = 0.0,
        context: Literal["last_basket", "history"] = "last_basket",
    ) -> None:
        self.metric = metric
        self.min_support = min_support
        self.shrink = shrink
        self.neighbors = neighbors
        self.basket_gap_seconds = basket_gap_seconds
        self.context = context

    def fit(self, data: Interactions) -> Self:
        if self.metric not in ("confidence", "lift", "cosine"):
            raise ConfigurationError(f"unknown metric {self.metric!r}", field="metric",
                                     accepted="confidence, lift, cosine")
        if self.context not in ("last_basket", "history"):
            raise ConfigurationError(f"unknown context {self.context!r}", field="context",
                                     accepted="last_basket, history")
        positive = np.asarray(data.weights) > 0
        baskets = basket_ids(data, self.basket_gap_seconds)[positive]
        items = np.asarray(data.item_idx)[positive]
        n_baskets = int(baskets.max()) + 1 if len(baskets) else 0
        b = sp.csr_matrix(
            (np.ones(len(items), np.float32), (baskets, items)), shape=(n_baskets, data.n_items)
        )
        b.data[:] = 1.0
        co = sp.csr_matrix(b.T @ b, dtype=np.float32)
        support = co.diagonal().astype(np.float32)
        co.setdiag(0)
        co.data[co.data < self.min_support] = 0
        co.eliminate_zeros()
        self.rules_ = self._rules(co, support, n_baskets)
        self.support_ = support
        self.n_baskets_ = n_baskets
        self.context_ = self._context_rows(data, positive, baskets, items)
        self.n_items_ = data.n_items
        return self

    def _rules(self, co: sp.csr_matrix, support: NDArray[np.float32], n: int) -> sp.csr_matrix:
        coo = co.tocoo()
        vals = rule_scores(coo.data, support[coo.row], support[coo.col], n,
                           metric=self.metric, shrink=self.shrink)
        rules = sp.csr_matrix((vals, (coo.row, coo.col)), shape=co.shape)
        if self.neighbors and rules.shape[0]:
            parts = [topk_rows(rules[s: s + 512].toarray(), self.neighbors)
                     for s in range(0, rules.shape[0], 512)]
            rules = sp.csr_matrix(sp.vstack(parts, format="csr"))
        return rules

    def _context_rows(self, data: Interactions, positive: NDArray[np.bool_],
                      baskets: NDArray[np.int64], items: NDArray[np.int64]) -> sp.csr_matrix:
        """Per user: the items of their last basket (or whole history) as a 0/1 row."""
        users = np.asarray(data.user_idx)[positive]
        if self.context == "last_basket" and len(baskets):
            last = np.full(data.n_users, -1, np.int64)
            np.maximum.at(last, users, baskets)  # basket ids grow with time within a user
            keep = baskets == last[users]
            users, items = users[keep], items[keep]
        rows = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)),
                             shape=(data.n_users, data.n_items))
        rows.data[:] = 1.0
        return rows

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> NDArray[Any]:
        self.check_fitted()
        users = np.asarray(user_indices, dtype=np.int64)
        rows = history_rows(self.context_, users, history, binary=True)
        return np.asarray((rows @ self.rules_).toarray(), dtype=np.float32)

    def recommend_for_basket(
        self, item_indices: Sequence[int], n: int = 10
    ) -> tuple[IdArray, ScoreArray]:
        """Top-``n`` items to add to a cart holding ``item_indices`` (cart items excluded)."""
        self.check_fitted()
        cart = np.unique(np.asarray([i for i in item_indices if 0 <= i < self.n_items_], np.int64))
        row = sp.csr_matrix((np.ones(len(cart), np.float32), (np.zeros(len(cart), np.int64), cart)),
                            shape=(1, self.n_items_))
        scores = np.asarray((row @ self.rules_).toarray(), dtype=np.float32)
        scores[scores <= 0] = -np.inf
        ids, top = top_n(scores, n, exclude=row)
        return ids[0], top[0]

    def similar_items(
        self, item_indices: IdArray | list[int], n: int = 10
    ) -> tuple[IdArray, ScoreArray]:
        """The items most often bought together with each item."""
        self.check_fitted()
        items = np.asarray(item_indices, dtype=np.int64)
        rows = np.asarray(self.rules_[items].toarray(), dtype=np.float32)
        rows[rows <= 0] = -np.inf
        rows[np.arange(len(items)), items] = -np.inf
        return top_n(rows, n)


__all__ = ["BuyItAgain", "FrequentlyBoughtTogether", "basket_ids", "repeat_propensity",
           "rule_scores"]
