"""Online Retail benchmark: temporal split (last 30 days test), hybrid vs baselines, baskets.

Cleaning as the dataset README suggests (no cancellations, Quantity > 0, a CustomerID). Every
model is fitted on the 11 months before the cutoff; the hybrid learns its blend weights on a
temporal validation split carved from those 11 months only. Two protocols:

- ``discovery``: all test users, full ranking, items bought in train masked (the standard
  top-N protocol of the other benchmarks);
- ``repeat``: nothing masked, relevant = everything bought in the test month (next-basket style,
  where "buy it again" belongs).

Frequently-bought-together is scored leave-one-out inside test invoices (HitRate@10).

    python benchmarks/online_retail.py
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_results
from personify.algorithms.base import Recommender
from personify.algorithms.basket import BuyItAgain, FrequentlyBoughtTogether, basket_ids
from personify.algorithms.content import ContentModel
from personify.algorithms.ease import EASE
from personify.algorithms.hybrid import ContentToFactors, HybridRecommender
from personify.algorithms.itemknn import ItemKNN
from personify.algorithms.popularity import Popularity
from personify.data.interactions import Interactions
from personify.data.online_retail import load_purchase_log, log_to_interactions
from personify.data.splits import temporal_split
from personify.evaluation._resources import peak_rss_mb, reset_peak
from personify.evaluation.protocol import evaluate

DATASETS = Path(
    os.environ.get(
        "PERSONIFY_DATASETS_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets")
    )
)
SOURCE = DATASETS / "online_retail_uci" / "online_retail.csv.gz"
TEST_DAYS = 30


def models() -> dict[str, Recommender]:
    def hybrid() -> HybridRecommender:
        return HybridRecommender(
            {
                "itemknn": ItemKNN(k=100),
                "ease": EASE(l2=200.0),
                "popularity": Popularity(half_life_days=30),
                "content": ContentModel(),
                "content_factors": ContentToFactors(factors=64),
            },
            validation="temporal",
        )

    return {
        "popularity": Popularity(),
        "popularity_decay30": Popularity(half_life_days=30),
        "itemknn": ItemKNN(k=100),
        "ease": EASE(l2=200.0),
        "content": ContentModel(),
        "content_factors": ContentToFactors(factors=64),
        "hybrid": hybrid(),
    }


def run(name: str, model: Recommender, train: Interactions, test: Interactions,
        *, mask_train: bool) -> dict[str, Any]:
    gc.collect()
    reset_peak()
    start = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - start
    result = evaluate(model, train, test, (10, 20), mask_train=mask_train)
    out: dict[str, Any] = {
        "recall@20": round(result["recall@20"], 5),
        "ndcg@20": round(result["ndcg@20"], 5),
        "recall@10": round(result["recall@10"], 5),
        "ndcg@10": round(result["ndcg@10"], 5),
        "hit_rate@20": round(result["hit_rate@20"], 5),
        "coverage@20": round(result["coverage@20"], 4),
        "fit_seconds": round(fit_seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "users_per_second": round(result["users_per_second"], 1),
        "users": int(result["users"]),
    }
    if isinstance(model, HybridRecommender):
        out["learned_weights"] = {
            seg: dict(zip(model.models_, map(float, w), strict=True))
            for seg, w in model.weights_.items()
        }
        out["validation_ndcg@20"] = model.validation_ndcg_
    print(name, json.dumps(out), flush=True)
    return out


def fbt_leave_one_out(train: Interactions, test: Interactions, k: int = 10) -> dict[str, Any]:
    """Hide each test invoice's last line; predict it from the rest of that invoice."""
    baskets = basket_ids(test)
    order = np.lexsort((np.arange(len(baskets)), baskets))
    b, items = baskets[order], test.item_idx[order]
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    ends = np.r_[starts[1:], len(b)]
    carts, targets = [], []
    for s, e in zip(starts, ends, strict=True):
        distinct = list(dict.fromkeys(items[s:e].tolist()))
        if len(distinct) >= 2:
            carts.append(distinct[:-1])
            targets.append(distinct[-1])
    out: dict[str, Any] = {"cases": len(carts)}
    pop = Popularity().fit(train)
    variants: dict[str, Recommender] = {
        "fbt_confidence": FrequentlyBoughtTogether("confidence", shrink=10.0),
        "fbt_lift": FrequentlyBoughtTogether("lift", min_support=3),
        "fbt_cosine": FrequentlyBoughtTogether("cosine", shrink=5.0),
        "itemknn": ItemKNN(k=100),
    }
    target = np.asarray(targets)
    for name, model in variants.items():
        start = time.perf_counter()
        model.fit(train)
        fit = time.perf_counter() - start
        rows = np.repeat(np.arange(len(carts)), [len(c) for c in carts])
        cols = np.fromiter((i for c in carts for i in c), np.int64)
        cart = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)),
                             shape=(len(carts), train.n_items))
        hits = 0
        for lo in range(0, len(carts), 2048):
            part = cart[lo: lo + 2048]
            ids, _ = model.recommend(np.full(part.shape[0], -1), k, exclude=part, history=part)
            hits += int((ids == target[lo: lo + 2048, None]).any(axis=1).sum())
        out[name] = {"hit_rate@10": round(hits / max(len(carts), 1), 5),
                     "fit_seconds": round(fit, 2)}
    ids, _ = pop.recommend(np.zeros(1, np.int64), k + 50)
    pop_hits = sum(t in set(ids[0][:k].tolist()) for t in targets)
    out["popularity"] = {"hit_rate@10": round(pop_hits / max(len(carts), 1), 5)}
    print("fbt", json.dumps(out), flush=True)
    return out


def main() -> None:
    start = time.perf_counter()
    log = load_purchase_log(SOURCE)
    data = log_to_interactions(log, weight="count")
    train, test = temporal_split(data, test_days=TEST_DAYS)
    print(f"loaded {len(log)} lines in {time.perf_counter() - start:.1f}s; "
          f"train {len(train.user_idx)} / test {len(test.user_idx)} lines", flush=True)
    discovery = {name: run(name, m, train, test, mask_train=True)
                 for name, m in models().items()}
    repeat_models: dict[str, Recommender] = {
        "popularity_decay30": Popularity(half_life_days=30),
        "itemknn": ItemKNN(k=100),
        "buy_again": BuyItAgain(half_life_days=60),
        "hybrid_repeat": HybridRecommender(
            {"buy_again": BuyItAgain(half_life_days=60), "itemknn": ItemKNN(k=100),
             "popularity": Popularity(half_life_days=30)},
            validation="temporal",
        ),
    }
    repeat = {name: run(name, m, train, test, mask_train=False)
              for name, m in repeat_models.items()}
    fbt = fbt_leave_one_out(train, test)
    best_baseline = max(
        (discovery[n] for n in ("popularity", "popularity_decay30", "itemknn")),
        key=lambda r: r["ndcg@20"],
    )
    metrics = {
        "protocol": f"temporal split, last {TEST_DAYS} days test; README cleaning; "
                    "full ranking over all items",
        "discovery": discovery,
        "repeat": repeat,
        "frequently_bought_together": fbt,
        "hybrid_margin_vs_best_baseline": {
            "recall@20": round(discovery["hybrid"]["recall@20"] - best_baseline["recall@20"], 5),
            "ndcg@20": round(discovery["hybrid"]["ndcg@20"] - best_baseline["ndcg@20"], 5),
        },
        "n_train_lines": len(train.user_idx),
        "n_test_lines": len(test.user_idx),
        "n_users": data.n_users,
        "n_items": data.n_items,
    }
    path = write_results("online_retail", metrics)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
