"""Every collaborative model passes the shared algorithm contract."""

from __future__ import annotations

from personify.algorithms.als import ALS
from personify.algorithms.base import Recommender
from personify.algorithms.blend import ScoreBlend
from personify.algorithms.bspm import BSPM
from personify.algorithms.ease import EASE
from personify.algorithms.gfcf import GFCF
from personify.algorithms.itemknn import ItemKNN
from personify.algorithms.popularity import Popularity
from personify.algorithms.random_items import RandomItems
from personify.algorithms.rp3beta import RP3beta
from personify.testing.algorithm_contracts import RecommenderContract


class TestPopularity(RecommenderContract):
    min_lift = 1.5

    def make_model(self) -> Recommender:
        return Popularity()


class TestTrendingPopularity(RecommenderContract):
    min_lift = 1.5

    def make_model(self) -> Recommender:
        return Popularity(half_life_days=1.0)


class TestRandomItems(RecommenderContract):
    learns = False

    def make_model(self) -> Recommender:
        return RandomItems(seed=3)


class TestItemKNNCosine(RecommenderContract):
    def make_model(self) -> Recommender:
        return ItemKNN(k=20, shrink=5.0)


class TestItemKNNAsymmetric(RecommenderContract):
    def make_model(self) -> Recommender:
        return ItemKNN(k=20, shrink=2.0, similarity="asymmetric", alpha=0.3, block_size=37)


class TestRP3beta(RecommenderContract):
    def make_model(self) -> Recommender:
        return RP3beta(k=30, alpha=0.8, beta=0.3, block_size=50)


class TestEASE(RecommenderContract):
    def make_model(self) -> Recommender:
        return EASE(l2=20.0, block_size=64)


class TestEASEFloat64(RecommenderContract):
    def make_model(self) -> Recommender:
        return EASE(l2=20.0, dtype="float64", backend="numpy")


class TestALS(RecommenderContract):
    def make_model(self) -> Recommender:
        return ALS(factors=16, iterations=8, regularization=0.1, alpha=5.0, seed=1,
                   num_threads=1)


class TestGFCF(RecommenderContract):
    def make_model(self) -> Recommender:
        return GFCF(alpha=0.3, n_factors=16)


class TestGFCFPruned(RecommenderContract):
    def make_model(self) -> Recommender:
        return GFCF(alpha=0.0, topk=40, block_size=33)


class TestBSPM(RecommenderContract):
    def make_model(self) -> Recommender:
        return BSPM(factor_dim=16, idl_beta=0.2, T_s=1.0)


class TestBSPMLateMergeEuler(RecommenderContract):
    def make_model(self) -> Recommender:
        return BSPM(factor_dim=16, idl_beta=0.3, T_s=0.5, K_s=2, K_b=2, solver="euler",
                    merge="late", t_point_combination=True)


class TestScoreBlend(RecommenderContract):
    def make_model(self) -> Recommender:
        return ScoreBlend([("ease", {"l2": 20.0}), ("rp3beta", {"k": 30})], [0.7, 0.3])
