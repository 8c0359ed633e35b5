"""Cold-start items on Online Retail: can a model recommend products nobody has bought yet?

Two splits (README cleaning, binary purchases):

- ``held_out_items``: a random 20 % of products (seeded) lose all their purchases from train;
  test = the purchases of those products by users who have at least one train purchase;
- ``new_in_last_30_days``: temporal split (last 30 days), test = purchases in the test month of
  products never sold before the cutoff (the catalogue's genuinely new items).

Each split is scored twice: ranking only the new products (``candidates``), and ranking the
whole catalogue (new products must also beat the known ones). The hybrid learns its weights on a
validation split that holds out 20 % of the *train* products (never the test ones).

    python benchmarks/cold_start.py
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_results
from benchmarks.online_retail import SOURCE
from personify.algorithms.base import IdArray, Recommender, ScoreArray
from personify.algorithms.content import ContentModel
from personify.algorithms.hybrid import ContentToFactors, HybridRecommender
from personify.algorithms.itemknn import ItemKNN
from personify.algorithms.popularity import Popularity
from personify.data.interactions import Interactions
from personify.data.online_retail import load_purchase_log, log_to_interactions
from personify.data.splits import Split, cold_start_items, subset, temporal_split
from personify.evaluation._resources import peak_rss_mb, reset_peak
from personify.evaluation.protocol import evaluate


class OnlyCandidates(Recommender):
    """Evaluation adapter: a fitted model whose rankings are restricted to ``candidates``."""

    def __init__(self, model: Recommender, candidates: NDArray[np.int64]) -> None:
        self.model = model
        self.candidates = candidates

    def fit(self, data: Interactions) -> OnlyCandidates:
        return self

    def score(self, user_indices: IdArray, history: sp.csr_matrix | None = None) -> Any:
        return self.model.score(user_indices, history)

    def check_fitted(self) -> None:
        self.model.check_fitted()

    def recommend(self, user_indices: Any, n: int = 10, *, exclude: Any = None,
                  candidates: Any = None, history: Any = None) -> tuple[IdArray, ScoreArray]:
        return self.model.recommend(user_indices, n, exclude=exclude, candidates=self.candidates,
                                    history=history)


def models() -> dict[str, Recommender]:
    return {
        "popularity": Popularity(),
        "itemknn": ItemKNN(k=100),
        "content": ContentModel(),
        "content_factors": ContentToFactors(factors=64),
        "hybrid": HybridRecommender(
            {
                "itemknn": ItemKNN(k=100),
                "popularity": Popularity(),
                "content": ContentModel(),
                "content_factors": ContentToFactors(factors=64),
            },
            validation="items",
        ),
    }


def evaluate_split(label: str, split: Split) -> dict[str, Any]:
    train, test = split
    known = np.zeros(train.n_items, dtype=bool)
    known[np.unique(train.item_idx)] = True
    new_items = np.flatnonzero(~known)
    test_m = sp.csr_matrix(test.matrix)
    train_m = sp.csr_matrix(train.matrix)
    users = np.flatnonzero((np.diff(test_m.indptr) > 0) & (np.diff(train_m.indptr) > 0))
    out: dict[str, Any] = {
        "new_items": len(new_items),
        "new_items_with_test_purchases": int(np.unique(test.item_idx).size),
        "users": len(users),
        "chance_recall@20_among_new": round(20 / max(len(new_items), 1), 4),
    }
    for name, model in models().items():
        gc.collect()
        reset_peak()
        start = time.perf_counter()
        model.fit(train)
        fit_seconds = time.perf_counter() - start
        among_new = evaluate(OnlyCandidates(model, new_items), train, test, (20,), users=users)
        everything = evaluate(model, train, test, (20,), users=users)
        row: dict[str, Any] = {
            "among_new_recall@20": round(among_new["recall@20"], 5),
            "among_new_ndcg@20": round(among_new["ndcg@20"], 5),
            "all_items_recall@20": round(everything["recall@20"], 5),
            "all_items_ndcg@20": round(everything["ndcg@20"], 5),
            "fit_seconds": round(fit_seconds, 2),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
        if isinstance(model, HybridRecommender):
            row["learned_weights"] = {
                seg: dict(zip(model.models_, map(float, w), strict=True))
                for seg, w in model.weights_.items()
            }
        out[name] = row
        print(label, name, json.dumps(row), flush=True)
    return out


def main() -> None:
    log = load_purchase_log(SOURCE)
    data = log_to_interactions(log, weight="count")
    held = cold_start_items(data, 0.2, seed=0)
    temporal = temporal_split(data, test_days=30)
    known = np.zeros(data.n_items, dtype=bool)
    known[np.unique(temporal.train.item_idx)] = True
    new_only = subset(temporal.test, ~known[temporal.test.item_idx])
    metrics: dict[str, Any] = {
        "held_out_items": evaluate_split("held_out_items", held),
        "new_in_last_30_days": evaluate_split("new_in_last_30_days",
                                              Split(temporal.train, new_only)),
    }
    for split_name in ("held_out_items", "new_in_last_30_days"):
        res = metrics[split_name]
        base = max(res["popularity"]["among_new_ndcg@20"], res["itemknn"]["among_new_ndcg@20"])
        metrics[split_name]["hybrid_margin_ndcg@20_among_new"] = round(
            res["hybrid"]["among_new_ndcg@20"] - base, 5)
    path = write_results("cold_start", metrics)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
