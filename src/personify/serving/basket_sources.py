"""The basket sources: ``bought_together`` (basket association rules of
:class:`~personify.algorithms.basket.FrequentlyBoughtTogether`, from the person's latest items,
and ``GET /v1/items/{id}/bought-together``) and ``buy_again`` (their own repeat purchases,
weighted by each item's repeat propensity as in :class:`~personify.algorithms.basket.BuyItAgain`).

Both are trained from the purchases of the training log (``TrainingLog.purchases``) into the
bundle's parts; without purchases there is no part and the sources are not asked."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.algorithms.basket import BuyItAgain, FrequentlyBoughtTogether
from personify.data.vocabulary import Vocabulary
from personify.serving.explanations import Reason
from personify.serving.source_registry import (
    BlendContext,
    OfflineScorer,
    TrainingLog,
    UserScores,
)
from personify.serving.sources import RequestScope, Scored

ANCHORS = 5
"""The person's latest distinct items the ``bought_together`` source completes."""
BUY_AGAIN_HALF_LIFE_DAYS = 60.0


@dataclass
class BasketRules:
    """Item -> items bought in the same baskets (shrunk confidence), in the bundle's id space."""

    items: Vocabulary
    rules: sp.csr_matrix
    baskets: int

    def together(self, item_id: str, n: int) -> list[tuple[str, float]]:
        i = self.items.get(item_id)
        if i < 0:
            return []
        row = self.rules.getrow(i)
        order = np.argsort(-row.data, kind="stable")[:n]
        return [(self.items.ids[int(row.indices[j])], float(row.data[j])) for j in order]


@dataclass
class RepeatPropensity:
    """Per item, the smoothed share of its buyers who bought it in two or more baskets."""

    items: Vocabulary
    propensity: NDArray[np.float32]
    half_life_days: float = BUY_AGAIN_HALF_LIFE_DAYS

    def of(self, item_id: str) -> float:
        i = self.items.get(item_id)
        return float(self.propensity[i]) if i >= 0 else 0.0


def train_bought_together(log: TrainingLog) -> BasketRules | None:
    purchases = log.purchases()
    if purchases is None:
        return None
    model = FrequentlyBoughtTogether("cosine", neighbors=100).fit(purchases)
    if model.rules_.nnz == 0:
        return None
    return BasketRules(purchases.items, sp.csr_matrix(model.rules_, dtype=np.float32),
                       int(model.n_baskets_))


def train_buy_again(log: TrainingLog) -> RepeatPropensity | None:
    purchases = log.purchases()
    if purchases is None:
        return None
    model = BuyItAgain(BUY_AGAIN_HALF_LIFE_DAYS).fit(purchases)
    return RepeatPropensity(purchases.items, model.propensity_)


class BoughtTogetherSource:
    """Items bought in the same baskets as the person's latest items (cart, purchases, views)."""

    name = "bought_together"
    personal = True

    def candidates(self, scope: RequestScope, n: int) -> list[Scored]:
        rules = scope.bundle.part(self.name) if scope.bundle is not None else None
        if rules is None or scope.user_state is None:
            return []
        anchors = list(dict.fromkeys(i.item_id for i in scope.user_state.recent[:20]))[:ANCHORS]
        best: dict[str, tuple[float, str]] = {}
        for rank, anchor in enumerate(anchors):
            for item_id, score in rules.together(anchor, n):
                value = score / (1 + rank)
                old = best.get(item_id)
                if old is None:
                    best[item_id] = (value, anchor)
                else:
                    best[item_id] = (old[0] + value, old[1] if old[0] >= value else anchor)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:n]
        return [Scored(i, s, Reason("bought_together", self.name, s,
                                    {"item_id": a, "title": _title(scope, a)}))
                for i, (s, a) in ranked]


class BuyAgainSource:
    """What the person bought before, by recency-decayed number of orders times the item's
    repeat propensity (exempt from ``exclude.bought``)."""

    name = "buy_again"
    personal = True

    def candidates(self, scope: RequestScope, n: int) -> list[Scored]:
        part = scope.bundle.part(self.name) if scope.bundle is not None else None
        if part is None or scope.user_state is None:
            return []
        orders: dict[str, set[float]] = {}
        scores: dict[str, float] = {}
        now = scope.now.timestamp()
        for inter in scope.user_state.recent:
            if inter.type != "purchase":
                continue
            when = inter.timestamp.timestamp()
            if when in orders.setdefault(inter.item_id, set()):
                continue  # one count per order
            orders[inter.item_id].add(when)
            decay = math.exp2(-max(0.0, now - when) / 86_400.0 / part.half_life_days)
            scores[inter.item_id] = scores.get(inter.item_id, 0.0) + decay
        ranked = sorted(((i, s * part.of(i)) for i, s in scores.items()),
                        key=lambda kv: (-kv[1], kv[0]))
        return [Scored(i, s, Reason("buy_again", self.name, s, {"item_id": i,
                                                                "title": _title(scope, i)}))
                for i, s in ranked[:n] if s > 0]


def offline_bought_together(ctx: BlendContext) -> OfflineScorer | None:
    """As the source scores: the rules of the person's items, summed (the validation history
    has no order within a person, so every item is an anchor)."""
    rules = ctx.bundle.part("bought_together")
    if rules is None:
        return None
    matrix = rules.rules

    def score(user: int, history: NDArray[np.int32], weights: NDArray[np.float64]) -> UserScores:
        if history.size == 0:
            return {}
        row = np.asarray(matrix[history].sum(axis=0)).ravel()
        nz = np.flatnonzero(row > 0)
        if nz.size == 0:
            return {}
        top = nz[np.argsort(-row[nz], kind="stable")[:100]]
        best = float(row[top[0]]) or 1.0
        return dict(zip(top.tolist(), (row[top] / best).tolist(), strict=True))

    return score


def _title(scope: RequestScope, item_id: str) -> str:
    item = scope.catalog.get(item_id)
    return item.title if item is not None and item.title else item_id
