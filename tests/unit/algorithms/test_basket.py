"""Buy-it-again and frequently-bought-together: baskets, recency, association rules, contract."""

from __future__ import annotations

import numpy as np
import pytest

from personify.algorithms.base import Recommender
from personify.algorithms.basket import BuyItAgain, FrequentlyBoughtTogether, basket_ids
from personify.data.interactions import Interactions
from personify.domain.errors import ConfigurationError
from personify.testing.algorithm_contracts import RecommenderContract

DAY = 86_400.0


def orders() -> Interactions:
    """Baskets (user, day, items): bread+butter often together, milk re-bought by ann."""
    rows = [
        ("ann", 0, ["bread", "butter", "milk"]),
        ("ann", 30, ["milk"]),
        ("ann", 59, ["milk", "jam"]),
        ("bob", 1, ["bread", "butter"]),
        ("bob", 2, ["bread", "butter", "jam"]),
        ("cid", 3, ["bread", "butter"]),
        ("cid", 4, ["tea"]),
        ("dan", 5, ["tea", "honey"]),
        ("dan", 6, ["tea", "honey"]),
    ]
    users, items, stamps = [], [], []
    for user, day, basket in rows:
        for item in basket:
            users.append(user)
            items.append(item)
            stamps.append(day * DAY)
    return Interactions.from_arrays(users, items, timestamps=stamps)


def test_baskets_are_a_users_events_sharing_a_time() -> None:
    data = orders()
    ids = basket_ids(data)
    assert len(np.unique(ids)) == 9
    assert len(np.unique(basket_ids(data, gap_seconds=2 * DAY))) == 6  # bob, cid, dan merge


def test_buy_again_prefers_frequent_recent_repeat_items() -> None:
    data = orders()
    model = BuyItAgain(half_life_days=30).fit(data)
    ids, _ = model.recommend([data.users.index("ann")], 4)
    names = data.items.lookup(ids[0][ids[0] >= 0])
    assert names[0] == "milk"  # bought three times
    never = set(data.items.ids) - {"bread", "butter", "milk", "jam"}
    scores = model.score(np.array([data.users.index("ann")]))[0]
    assert all(scores[data.items.index(i)] == 0 for i in never)
    recent = BuyItAgain(half_life_days=1).fit(data).score(np.array([data.users.index("ann")]))[0]
    jam, bread = data.items.index("jam"), data.items.index("bread")
    assert recent[jam] > recent[bread]  # day 59 beats day 0 under a short half-life
    with pytest.raises(ConfigurationError):
        BuyItAgain(half_life_days=0).fit(data)


def test_frequently_bought_together_rules() -> None:
    data = orders()
    model = FrequentlyBoughtTogether(min_support=2, shrink=0.0).fit(data)
    ids, scores = model.recommend_for_basket([data.items.index("bread")], 3)
    assert data.items.lookup(ids[:1]) == ["butter"]
    assert scores[0] == pytest.approx(1.0)  # every bread basket holds butter
    assert -1 in ids.tolist()  # jam shares one basket only: below min_support
    ids, _ = model.similar_items([data.items.index("tea")], 2)
    assert data.items.lookup(ids[0][:1]) == ["honey"]
    lift = FrequentlyBoughtTogether("lift", min_support=2).fit(data)
    tea, honey = data.items.index("tea"), data.items.index("honey")
    assert lift.rules_[tea, honey] == pytest.approx(2 * 9 / (3 * 2))
    user = data.users.index("cid")  # last basket: tea -> honey
    ids, _ = model.recommend([user], 1, exclude=data.matrix)
    assert data.items.lookup(ids[0]) == ["honey"]


class TestFrequentlyBoughtTogetherContract(RecommenderContract):
    def make_model(self) -> Recommender:
        # planted users have one event per minute: a one-hour gap makes each user one basket
        return FrequentlyBoughtTogether(basket_gap_seconds=3600.0, context="history",
                                        min_support=1)


class TestBuyItAgainContract(RecommenderContract):
    learns = False  # it only re-recommends bought items, which the planted test masks

    def make_model(self) -> Recommender:
        return BuyItAgain()
