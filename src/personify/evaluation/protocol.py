"""Full-ranking offline evaluation: every user with test items, all items ranked, train masked.

``evaluate`` returns a flat dict such as ``{"recall@20": 0.1765, "ndcg@20": 0.1467, ...}``;
``compare`` evaluates several models next to the popularity and random baselines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from personify.algorithms.base import Recommender
from personify.data.interactions import Interactions
from personify.evaluation import metrics

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(users_done, users_total)`` after each batch."""

ACCURACY = ("recall", "precision", "ndcg", "map", "mrr", "hit_rate")


def _per_user(hits: np.ndarray, n_rel: np.ndarray, k: int) -> dict[str, np.ndarray]:
    return {
        "recall": metrics.recall(hits, n_rel, k),
        "precision": metrics.precision(hits, k),
        "ndcg": metrics.ndcg(hits, n_rel, k),
        "map": metrics.average_precision(hits, n_rel, k),
        "mrr": metrics.reciprocal_rank(hits, k),
        "hit_rate": metrics.hit_rate(hits, k),
    }


def evaluate(
    model: Recommender,
    train: Interactions,
    test: Interactions,
    ks: Sequence[int] = (10, 20),
    *,
    batch_size: int = 1024,
    users: np.ndarray | None = None,
    mask_train: bool = True,
    fold_in: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, float]:
    """Mean top-K metrics over all users with test items (or the given ``users``).

    ``mask_train`` excludes each user's training items from the ranking (the standard protocol).
    ``fold_in`` passes the training rows as ``history`` (for users unseen at fit time, e.g. the
    held-out-users cold-start split). Beyond-accuracy metrics are computed on the largest K.
    """
    if not ks:
        raise ValueError("ks must hold at least one cut-off")
    ks = sorted({int(k) for k in ks})
    kmax = ks[-1]
    test_m = sp.csr_matrix(test.matrix)
    test_m = sp.csr_matrix((test_m > 0).astype(np.float32))
    train_m = sp.csr_matrix(train.matrix)
    n_rel_all = np.diff(test_m.indptr)
    if users is None:
        users = np.flatnonzero(n_rel_all > 0)
    users = np.asarray(users, dtype=np.int64)
    sums: dict[str, float] = {f"{m}@{k}": 0.0 for k in ks for m in ACCURACY}
    ranked_all = np.full((len(users), kmax), -1, dtype=np.int64)
    start = time.perf_counter()
    for lo in range(0, len(users), batch_size):
        batch = users[lo : lo + batch_size]
        history = train_m[batch] if fold_in else None
        exclude = train_m if mask_train else None
        ids, _ = model.recommend(batch, kmax, exclude=exclude, history=history)
        ranked_all[lo : lo + len(batch)] = ids
        hits = metrics.hit_matrix(ids, test_m[batch])
        n_rel = n_rel_all[batch]
        for k in ks:
            for name, values in _per_user(hits, n_rel, k).items():
                sums[f"{name}@{k}"] += float(values.sum())
        if progress is not None:
            progress(min(lo + batch_size, len(users)), len(users))
    seconds = time.perf_counter() - start
    n = max(len(users), 1)
    result = {key: value / n for key, value in sums.items()}
    popularity = np.asarray((train_m > 0).sum(axis=0)).ravel()
    result.update(
        {
            f"coverage@{kmax}": metrics.coverage(ranked_all, train.n_items),
            f"gini@{kmax}": metrics.gini(ranked_all, train.n_items),
            f"novelty@{kmax}": metrics.novelty(ranked_all, popularity, train.n_users),
            f"arp@{kmax}": metrics.average_popularity(ranked_all, popularity),
            "users": float(len(users)),
            "eval_seconds": seconds,
            "users_per_second": len(users) / seconds if seconds > 0 else float("inf"),
        }
    )
    return result


def compare(
    models: Mapping[str, Recommender],
    train: Interactions,
    test: Interactions,
    ks: Sequence[int] = (10, 20),
    *,
    baselines: bool = True,
    seed: int = 0,
    **kwargs: Any,
) -> dict[str, dict[str, float]]:
    """Fit (timed) and evaluate each model; adds ``popularity`` and ``random`` baselines."""
    from personify.algorithms.popularity import Popularity
    from personify.algorithms.random_items import RandomItems

    todo: dict[str, Recommender] = dict(models)
    if baselines:
        todo.setdefault("popularity", Popularity())
        todo.setdefault("random", RandomItems(seed=seed))
    results: dict[str, dict[str, float]] = {}
    for name, model in todo.items():
        start = time.perf_counter()
        model.fit(train)
        fit_seconds = time.perf_counter() - start
        results[name] = {"fit_seconds": fit_seconds, **evaluate(model, train, test, ks, **kwargs)}
    return results


class RankedLists(Recommender):
    """Rankings computed elsewhere (e.g. answers of the serving chain) behind the model
    interface, so :func:`evaluate` scores them like any model: ``ranked`` is users x K item
    indices (-1 padded), already without what the protocol masks."""

    name = "ranked-lists"
    fitted_attribute = "ranked_"

    def __init__(self, ranked: np.ndarray) -> None:
        self.ranked_ = np.asarray(ranked, dtype=np.int64)
        self.n_items_ = int(self.ranked_.max(initial=-1)) + 1

    def fit(self, data: Interactions) -> RankedLists:
        return self

    def score(self, user_indices: np.ndarray, history: sp.csr_matrix | None = None
              ) -> np.ndarray:
        raise NotImplementedError("ranked lists have no scores; use recommend")

    def recommend(self, user_indices: Any, n: int = 10, *, exclude: sp.csr_matrix | None = None,
                  candidates: np.ndarray | None = None, history: sp.csr_matrix | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        rows = self.ranked_[np.asarray(user_indices, dtype=np.int64), :n]
        if rows.shape[1] < n:
            rows = np.pad(rows, ((0, 0), (0, n - rows.shape[1])), constant_values=-1)
        scores = np.where(rows >= 0, -np.arange(n, dtype=np.float32)[None, :], -np.inf)
        return rows, scores.astype(np.float32)


def warm_and_cold(train: Interactions, test: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """Test users with training history (warm) and without (cold): a temporal split keeps
    people who first appear in the test period; no collaborative model knows them, so they are
    reported apart."""
    n_test = np.diff(sp.csr_matrix(test.matrix).indptr)
    n_train = np.diff(sp.csr_matrix(train.matrix).indptr)
    users = np.flatnonzero(n_test > 0)
    known = n_train[users] > 0
    return users[known], users[~known]
