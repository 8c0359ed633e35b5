"""Model-specific behaviour beyond the shared contract."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from personify.algorithms import available_models, create_model, model_class, register
from personify.algorithms.als import ALS
from personify.algorithms.ease import EASE, ease_memory_bytes
from personify.algorithms.itemknn import ItemKNN
from personify.algorithms.popularity import DAY, Popularity
from personify.algorithms.rp3beta import RP3beta
from personify.data.interactions import Interactions
from personify.data.vocabulary import Vocabulary
from personify.domain.errors import ConfigurationError, InvalidInput, LimitExceeded
from personify.testing.algorithm_contracts import planted_split

X = np.array(
    [[1, 1, 0, 0, 1], [1, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 0, 1, 0], [0, 0, 1, 1, 1]],
    dtype=np.float32,
)


def matrix_data(x: np.ndarray) -> Interactions:
    rows, cols = np.nonzero(x)
    return Interactions.from_arrays(
        [f"u{r}" for r in rows], [f"i{c}" for c in cols], x[rows, cols],
        users=_vocab("u", x.shape[0]), items=_vocab("i", x.shape[1]),
    )


def _vocab(prefix: str, n: int) -> Vocabulary:
    return Vocabulary(f"{prefix}{k}" for k in range(n))


def test_ease_matches_the_closed_form() -> None:
    l2 = 2.0
    p = np.linalg.inv(X.T @ X + l2 * np.eye(5))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    model = EASE(l2=l2, dtype="float64").fit(matrix_data(X))
    np.testing.assert_allclose(model.B_, b, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.score(np.arange(5)), X @ b, rtol=1e-6, atol=1e-8)


def test_ease_woodbury_form_gives_the_same_scores_with_fewer_users_than_items() -> None:
    rng = np.random.default_rng(3)
    wide = (rng.random((12, 40)) < 0.2).astype(np.float32)  # 12 people, 40 items
    wide[0, :3] = 1.0
    data = matrix_data(wide)
    gram = EASE(l2=3.0, dtype="float64", solver="gram").fit(data)
    woodbury = EASE(l2=3.0, dtype="float64", solver="woodbury").fit(data)
    np.testing.assert_allclose(woodbury.B_, gram.B_, rtol=1e-7, atol=1e-12)
    users = np.arange(12)
    np.testing.assert_allclose(woodbury.score(users), gram.score(users), atol=1e-10)
    # auto picks Woodbury here: same top lists as the Gram inverse in float32 too
    auto = EASE(l2=3.0).fit(data)
    assert ease_memory_bytes(40, "float32", "auto", 12) == 40 * 40 * 4 + (144 + 12 * 1024) * 8
    np.testing.assert_allclose(auto.B_, gram.B_, atol=1e-5)
    np.testing.assert_array_equal(auto.recommend(users, 5, exclude=data.matrix)[0],
                                  gram.recommend(users, 5, exclude=data.matrix)[0])
    with pytest.raises(ConfigurationError):
        EASE(solver="qr").fit(data)  # type: ignore[arg-type]


def test_ease_refuses_above_the_memory_budget_with_a_suggestion() -> None:
    assert ease_memory_bytes(40_981, "float32", "scipy") == 40_981**2 * 4
    assert ease_memory_bytes(40_981, "float64", "numpy") == 2 * 40_981**2 * 8
    with pytest.raises(LimitExceeded) as info:
        EASE(memory_budget_gb=1e-9).fit(matrix_data(X))
    assert info.value.field == "memory_budget_gb"
    assert "itemknn" in (info.value.accepted or "")
    with pytest.raises(ConfigurationError):
        EASE(l2=0.0).fit(matrix_data(X))
    with pytest.raises(ConfigurationError):
        EASE(backend="gpu").fit(matrix_data(X))  # type: ignore[arg-type]


def test_ease_scipy_inplace_and_numpy_agree() -> None:
    split = planted_split()
    a = EASE(l2=10.0, backend="scipy").fit(split.train).B_
    b = EASE(l2=10.0, backend="numpy", dtype="float64").fit(split.train).B_
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_ease_torch_backend_inverts_in_place() -> None:
    pytest.importorskip("torch")
    from personify.algorithms._dense_inverse import inverse_spd_inplace

    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 40))
    gram = (a @ a.T + 10 * np.eye(300)).astype(np.float32)
    buffer = gram.copy()
    inv = inverse_spd_inplace(buffer, "torch")
    assert np.shares_memory(inv, buffer)  # no second result matrix: the memory plan holds
    np.testing.assert_allclose(inv @ gram, np.eye(300), atol=1e-4)
    split = planted_split()
    np.testing.assert_allclose(EASE(l2=10.0, backend="torch").fit(split.train).B_,
                               EASE(l2=10.0, backend="scipy").fit(split.train).B_, atol=1e-5)


def test_itemknn_cosine_with_shrink_matches_hand_computation() -> None:
    model = ItemKNN(k=10, shrink=1.0).fit(matrix_data(X))
    co = X.T @ X
    n = np.diag(co)
    expected = co / (np.sqrt(n[:, None] * n[None, :]) + 1.0)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(model.W_.toarray(), expected, rtol=1e-6)


def test_itemknn_keeps_k_neighbours_per_target_item() -> None:
    model = ItemKNN(k=2, shrink=0.0).fit(matrix_data(X))
    assert np.all(np.diff(sp.csc_matrix(model.W_).indptr) <= 2)


def test_rp3beta_matches_hand_computation() -> None:
    alpha, beta = 1.0, 0.5
    p_ui = X / X.sum(axis=1, keepdims=True)
    p_iu = X.T / X.T.sum(axis=1, keepdims=True)
    w = (p_iu @ p_ui) / (X.sum(axis=0)[None, :] ** beta)
    np.fill_diagonal(w, 0.0)
    model = RP3beta(k=10, alpha=alpha, beta=beta).fit(matrix_data(X))
    np.testing.assert_allclose(model.W_.toarray(), w, rtol=1e-5)


def test_popularity_time_decay_prefers_recent_items() -> None:
    now = 100 * DAY
    data = Interactions.from_arrays(
        ["a", "b", "c", "d"], ["old", "old", "old", "new"],
        timestamps=[now - 30 * DAY, now - 30 * DAY, now - 30 * DAY, now],
    )
    plain = Popularity().fit(data)
    assert plain.recommend([0], 1)[0][0, 0] == data.items.index("old")
    trending = Popularity(half_life_days=7.0, now=now).fit(data)
    assert trending.recommend([0], 1)[0][0, 0] == data.items.index("new")
    np.testing.assert_allclose(trending.scores_[data.items.index("old")], 3 * 2 ** (-30 / 7),
                               rtol=1e-5)


def test_popularity_per_segment_with_global_fallback() -> None:
    data = Interactions.from_arrays(
        ["fr1", "fr2", "de1", "de2", "de3", "x"], ["croissant", "croissant", "pretzel",
                                                  "pretzel", "pretzel", "pizza"],
    )
    segments = {"fr1": "FR", "fr2": "FR", "de1": "DE", "de2": "DE", "de3": "DE"}
    model = Popularity(segments=segments, segment_shrinkage=1.0).fit(data)
    top = model.recommend([data.users.index("fr1"), data.users.index("x")], 1)[0][:, 0]
    assert data.items.lookup(top) == ["croissant", "pretzel"]
    assert data.items.lookup([int(np.argmax(model.score_segment("DE")))]) == ["pretzel"]
    np.testing.assert_array_equal(model.score_segment("unknown"), model.scores_)


def test_popularity_new_items_exploration() -> None:
    data = Interactions.from_arrays(
        ["a", "b", "c", "d"], ["old", "old", "old", "fresh"], timestamps=[0, 0, 0, 10 * DAY]
    )
    model = Popularity(new_items_days=3.0).fit(data)
    assert model.recommend([0], 2)[0][0].tolist() == [data.items.index("fresh"),
                                                    data.items.index("old")]
    with pytest.raises(ConfigurationError):
        Popularity(half_life_days=1.0).fit(Interactions.from_arrays(["a"], ["b"]))


def test_als_confidence_uses_event_weights_and_folds_in() -> None:
    split = planted_split()
    model = ALS(factors=16, iterations=10, regularization=0.1, alpha=5.0, seed=0,
                num_threads=1).fit(split.train)
    users = np.arange(10)
    folded = model.user_vectors(users, split.train.matrix[users])
    trained = model.user_factors_[users]
    cosine = (folded * trained).sum(axis=1) / (
        np.linalg.norm(folded, axis=1) * np.linalg.norm(trained, axis=1))
    assert cosine.min() > 0.98  # implicit's fit uses a few CG steps, fold-in solves exactly
    heavier = split.train.with_matrix(split.train.matrix * 3.0)
    other = ALS(factors=16, iterations=10, regularization=0.1, alpha=5.0, seed=0,
                num_threads=1).fit(heavier)
    assert not np.allclose(other.item_factors_, model.item_factors_)


def test_als_weight_transforms_tame_raw_counts() -> None:
    split = planted_split()
    counts = split.train.with_matrix(split.train.matrix * 5000.0)  # play counts
    kwargs = {"factors": 8, "iterations": 5, "regularization": 0.1, "alpha": 1.0, "seed": 0,
              "num_threads": 1}
    raw = ALS(**kwargs).fit(counts)
    logged = ALS(weight_transform="log", **kwargs).fit(counts)
    capped = ALS(weight_transform="cap", weight_cap=2.0, **kwargs).fit(counts)
    plain = ALS(weight_transform="cap", weight_cap=2.0, **kwargs).fit(
        split.train.with_matrix(split.train.matrix * 2.0))
    assert capped.cap_ == 2.0
    # capped at 2, the counts fit exactly the model of weights 2; log and raw differ
    np.testing.assert_allclose(capped.item_factors_, plain.item_factors_, atol=1e-5)
    assert not np.allclose(logged.item_factors_, raw.item_factors_)
    assert ALS(weight_transform="cap", **kwargs).fit(counts).cap_ == pytest.approx(5000.0)
    with pytest.raises(ConfigurationError):
        ALS(weight_transform="sqrt", **kwargs).fit(counts)


def test_registry() -> None:
    assert {"popularity", "itemknn", "rp3beta", "ease", "als", "gfcf"} <= set(available_models())
    model = create_model("ease", l2=5.0)
    assert isinstance(model, EASE) and model.l2 == 5.0
    with pytest.raises(InvalidInput) as info:
        create_model("nope")
    assert "ease" in (info.value.accepted or "")
    register("knn-alias", "personify.algorithms.itemknn:ItemKNN")
    assert model_class("knn-alias") is ItemKNN
    with pytest.raises(InvalidInput):
        register("bad", "no-colon")
