"""The contract every recommendation model passes (the implicit / scikit-learn test-mixin idea).

Subclass ``RecommenderContract`` in a test module and give it a factory::

    class TestEASE(RecommenderContract):
        def make_model(self) -> Recommender:
            return EASE(l2=10.0)

``planted_split`` is a small synthetic dataset with planted clusters, so "it learns" can be
checked in milliseconds: a model must beat the random ranking by a clear margin.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from personify.algorithms.base import Recommender
from personify.algorithms.random_items import RandomItems
from personify.data.interactions import Interactions
from personify.data.splits import Split, random_holdout
from personify.domain.errors import NotFitted
from personify.evaluation.metrics import hit_matrix, recall


def planted_split(
    n_users: int = 240, n_items: int = 160, n_clusters: int = 8, *, per_user: int = 12,
    noise: float = 0.1, seed: int = 7,
) -> Split:
    """Users belong to clusters of skewed sizes and mostly pick (Zipf-weighted) items of their
    cluster; 25 % of each user's items are held out as test. Timestamps follow event order."""
    rng = np.random.default_rng(seed)
    cluster_items = np.array_split(rng.permutation(n_items), n_clusters)
    sizes = 1.0 / np.arange(1, n_clusters + 1)
    user_cluster = rng.choice(n_clusters, size=n_users, p=sizes / sizes.sum())
    users, items = [], []
    for u in range(n_users):
        own = cluster_items[user_cluster[u]]
        p = 1.0 / np.arange(1, len(own) + 1) ** 0.7
        picks = rng.choice(own, size=min(per_user, len(own)), replace=False, p=p / p.sum())
        noisy = rng.random(len(picks)) < noise
        picks[noisy] = rng.integers(0, n_items, noisy.sum())
        for item in dict.fromkeys(picks.tolist()):
            users.append(f"u{u}")
            items.append(f"i{item}")
    times = np.arange(len(users), dtype=np.float64) * 60.0 + 1.7e9
    data = Interactions.from_arrays(users, items, timestamps=times)
    return random_holdout(data, 0.25, seed=seed)


def recall_at(model: Recommender, split: Split, k: int = 10) -> float:
    """Mean Recall@k over users with test items, training items masked."""
    test = sp.csr_matrix(split.test.matrix)
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    ids, _ = model.recommend(users, k, exclude=split.train.matrix)
    hits = hit_matrix(ids, test[users])
    return float(recall(hits, np.diff(test.indptr)[users], k).mean())


class RecommenderContract:
    """Reusable contract tests; subclasses implement ``make_model``."""

    learns: ClassVar[bool] = True
    """False for baselines that are not expected to beat random (the random model itself)."""
    min_lift: ClassVar[float] = 2.0
    """Recall@10 must be at least this multiple of the random model's."""

    def make_model(self) -> Recommender:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def split(cls) -> Split:
        return planted_split()

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, split: Split) -> Recommender:
        return cls().make_model().fit(split.train)

    def test_not_fitted_before_fit(self) -> None:
        model = self.make_model()
        with pytest.raises(NotFitted):
            model.recommend([0, 1], 5)
        with pytest.raises(NotFitted):
            model.similar_items([0], 5)

    def test_fit_returns_self_and_learned_state_ends_with_underscore(self, split: Split) -> None:
        model = self.make_model()
        before = set(vars(model))
        assert model.fit(split.train) is model
        learned = set(vars(model)) - before
        assert learned, "fit must set learned attributes"
        assert all(name.endswith("_") for name in learned), sorted(learned)
        assert set(model.get_params()) == before

    def test_recommend_shapes_sorting_and_padding(self, fitted: Recommender,
                                                  split: Split) -> None:
        users = np.arange(6)
        ids, scores = fitted.recommend(users, 7)
        assert ids.shape == scores.shape == (6, 7)
        assert ids.dtype == np.int64 and scores.dtype == np.float32
        assert np.all(np.diff(scores, axis=1) <= 0)
        n_items = split.train.n_items
        ids, scores = fitted.recommend(users[:2], n_items + 5)
        assert ids.shape == (2, n_items + 5)
        assert np.all(ids[:, n_items:] == -1) and np.all(np.isneginf(scores[:, n_items:]))
        valid = ids[ids >= 0]
        assert valid.max() < n_items

    def test_excluded_items_are_never_returned(self, fitted: Recommender, split: Split) -> None:
        train = sp.csr_matrix(split.train.matrix)
        users = np.arange(split.train.n_users)
        ids, _ = fitted.recommend(users, 20, exclude=train)
        for row, user in enumerate(users):
            seen = set(train.indices[train.indptr[user] : train.indptr[user + 1]].tolist())
            assert not seen & set(ids[row].tolist())
        full, _ = fitted.recommend(users[:3], split.train.n_items, exclude=train)
        for row, user in enumerate(users[:3]):
            n_seen = train.indptr[user + 1] - train.indptr[user]
            assert (full[row] >= 0).sum() == split.train.n_items - n_seen

    def test_candidate_restriction_is_honoured(self, fitted: Recommender) -> None:
        candidates = np.array([3, 17, 42, 99, 120], dtype=np.int64)
        ids, _ = fitted.recommend(np.arange(10), 8, candidates=candidates)
        returned = ids[ids >= 0]
        assert set(returned.tolist()) <= set(candidates.tolist())
        assert np.all((ids >= 0).sum(axis=1) == len(candidates))

    def test_similar_items_excludes_the_item_itself(self, fitted: Recommender) -> None:
        items = np.array([0, 5, 9], dtype=np.int64)
        ids, scores = fitted.similar_items(items, 5)
        assert ids.shape == scores.shape == (3, 5)
        for row, item in enumerate(items):
            assert item not in ids[row].tolist()

    def test_save_load_round_trip(self, fitted: Recommender, tmp_path: Path) -> None:
        users = np.arange(20)
        expected = fitted.recommend(users, 10)
        buffer = io.BytesIO()
        fitted.save(buffer)
        buffer.seek(0)
        from_buffer = type(fitted).load(buffer)
        fitted.save(tmp_path / "model.pkl")
        from_file = type(fitted).load(tmp_path / "model.pkl")
        for loaded in (from_buffer, from_file):
            ids, scores = loaded.recommend(users, 10)
            np.testing.assert_array_equal(ids, expected[0])
            np.testing.assert_array_equal(scores, expected[1])

    def test_deterministic_with_a_seed(self, fitted: Recommender, split: Split) -> None:
        again = self.make_model().fit(split.train)
        users = np.arange(30)
        np.testing.assert_array_equal(again.recommend(users, 10)[0],
                                      fitted.recommend(users, 10)[0])

    def test_history_fold_in(self, fitted: Recommender, split: Split) -> None:
        train = sp.csr_matrix(split.train.matrix)
        users = np.arange(5)
        ids, _ = fitted.recommend(users, 6, exclude=train, history=train[users])
        assert ids.shape == (5, 6)
        for row, user in enumerate(users):
            seen = set(train.indices[train.indptr[user] : train.indptr[user + 1]].tolist())
            assert not seen & set(ids[row].tolist())

    def test_it_learns_the_planted_structure(self, fitted: Recommender, split: Split) -> None:
        if not self.learns:
            pytest.skip("a baseline that is not expected to learn")
        model_recall = recall_at(fitted, split)
        random_recall = np.mean(
            [recall_at(RandomItems(seed=s).fit(split.train), split) for s in range(3)]
        )
        assert model_recall >= self.min_lift * random_recall, (model_recall, random_recall)
        assert model_recall >= random_recall + 0.05, (model_recall, random_recall)
