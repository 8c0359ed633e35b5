"""Hybrid: learned blend weights, cold users / items, content mapped to collaborative factors."""

from __future__ import annotations

import numpy as np
import pytest
from _planted_text import planted_split_with_text

from personify.algorithms.base import Recommender
from personify.algorithms.content import ContentModel
from personify.algorithms.hybrid import ContentToFactors, HybridRecommender
from personify.algorithms.itemknn import ItemKNN
from personify.algorithms.popularity import Popularity
from personify.algorithms.random_items import RandomItems
from personify.data.splits import Split, cold_start_items
from personify.testing.algorithm_contracts import RecommenderContract, recall_at


@pytest.fixture(scope="module")
def split() -> Split:
    return planted_split_with_text()


def test_weights_are_learned_and_noise_gets_little(split: Split) -> None:
    model = HybridRecommender(
        {"itemknn": ItemKNN(k=50), "random": RandomItems(seed=1)}, validation="random"
    ).fit(split.train)
    w = model.weights_["warm"]
    assert w[0] > 0 and w[1] < w[0]  # the noise component is down-weighted, not hand-set
    assert model.validation_ndcg_["all"] > 0
    alone = recall_at(ItemKNN(k=50).fit(split.train), split)
    assert recall_at(model, split) >= alone - 0.02


def test_new_items_are_reached_through_their_text(split: Split) -> None:
    cold = cold_start_items(split.train, 0.2, seed=3)
    new_items = np.setdiff1d(np.arange(split.train.n_items), np.unique(cold.train.item_idx))
    test = cold.test.matrix.tocsr()
    users = np.flatnonzero(np.diff(test.indptr) > 0)

    def new_item_recall(model: Recommender) -> float:
        ids, _ = model.recommend(users, 5, candidates=new_items, exclude=cold.train.matrix)
        return float(np.mean([np.isin(ids[r], test[u].indices).sum() / test[u].nnz
                              for r, u in enumerate(users)]))

    mapped = ContentToFactors(factors=16).fit(cold.train)
    assert not mapped.warm_[new_items].any()
    chance = 5 / len(new_items)
    assert new_item_recall(mapped) > 2 * chance
    knn = new_item_recall(ItemKNN().fit(cold.train))  # knows no new item: ties, arbitrary order
    assert new_item_recall(mapped) > knn + 0.1
    hybrid = HybridRecommender(
        {"itemknn": ItemKNN(), "content_factors": ContentToFactors(factors=16)},
        validation="items",
    ).fit(cold.train)
    assert new_item_recall(hybrid) > 2 * chance
    assert hybrid.weights_["warm"][1] > 0


def test_new_user_from_interests_and_first_clicks(split: Split) -> None:
    model = HybridRecommender(
        {"popularity": Popularity(), "content": ContentModel(), "itemknn": ItemKNN()},
        validation="random",
    ).fit(split.train)
    titles = split.train.item_features["title"]
    ids, _ = model.recommend_new_user(10, interests="garden flower")
    garden = [("garden" in str(titles[i])) for i in ids]
    assert np.mean(garden) >= 0.5
    first = [i for i, t in enumerate(titles) if "kitchen" in str(t)][:2]
    ids, _ = model.recommend_new_user(10, history_items=first)
    assert not set(first) & set(ids.tolist())
    assert np.mean([("kitchen" in str(titles[i])) for i in ids]) >= 0.5


class TestHybridContract(RecommenderContract):
    def make_model(self) -> Recommender:
        return HybridRecommender(validation="random", max_validation_users=200, passes=1,
                                 grid=(0.0, 0.5, 1.0, 2.0))

    @pytest.fixture(scope="class")
    @classmethod
    def split(cls) -> Split:
        return planted_split_with_text()


class TestContentToFactorsContract(RecommenderContract):
    def make_model(self) -> Recommender:
        return ContentToFactors(factors=16)

    @pytest.fixture(scope="class")
    @classmethod
    def split(cls) -> Split:
        return planted_split_with_text()
