"""Session-based next-item benchmark on the Diginetica SAMPLE shipped with SR-GNN.

Protocol (SR-GNN style, scaled to the 12k-row sample): sessions of one view dropped; the
sessions of the last 30 days are test (views of items unseen in train removed); every prefix of
a test session predicts its next view; HitRate@20 (SR-GNN's "P@20") and MRR@20. The published
full-data numbers (SR-GNN 50.73 / 17.59) are NOT comparable to this sample.

Hyper-parameters are chosen on a validation split (the last 30 days of the training sessions),
never on test.

    python benchmarks/session.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_results
from personify.algorithms.popularity import Popularity
from personify.algorithms.session import MarkovTransitions, SessionKNN, SessionRecommender
from personify.data.diginetica import SessionLog, read_diginetica, split_sessions_by_date
from personify.data.interactions import Interactions
from personify.evaluation.metrics import hit_rate, reciprocal_rank

DATASETS = Path(
    os.environ.get(
        "PERSONIFY_DATASETS_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets")
    )
)
SOURCE = DATASETS / "diginetica_sample_srgnn" / "sample_train-item-views.csv"
TEST_DAYS = 30
K = 20


def prefixes(test: SessionLog, data: Interactions) -> tuple[list[list[int]], np.ndarray]:
    cases, targets = [], []
    for seq in test.sequences:
        idx = data.items.indices(seq).tolist()
        for cut in range(1, len(idx)):
            cases.append(idx[:cut])
            targets.append(idx[cut])
    return cases, np.asarray(targets, dtype=np.int64)


def score(model: SessionRecommender | Popularity, train: SessionLog, test: SessionLog
          ) -> dict[str, Any]:
    data = train.to_interactions()
    start = time.perf_counter()
    model.fit(data)
    fit_seconds = time.perf_counter() - start
    cases, targets = prefixes(test, data)
    start = time.perf_counter()
    if isinstance(model, SessionRecommender):
        ids, _ = model.recommend_sessions(cases, K)
    else:
        ids, _ = model.recommend(np.zeros(len(cases), np.int64), K)
    seconds = time.perf_counter() - start
    hits = ids == targets[:, None]
    return {
        "hit_rate@20": round(float(hit_rate(hits, K).mean()), 5),
        "mrr@20": round(float(reciprocal_rank(hits, K).mean()), 5),
        "cases": len(cases),
        "fit_seconds": round(fit_seconds, 3),
        "sessions_per_second": round(len(cases) / seconds, 1) if seconds > 0 else None,
    }


def main() -> None:
    log = read_diginetica(SOURCE)
    train, test = split_sessions_by_date(log, test_days=TEST_DAYS)
    fit_part, validation = split_sessions_by_date(train, test_days=TEST_DAYS)
    grids: dict[str, list[SessionRecommender]] = {
        "sknn": [SessionKNN(k=k, sample_size=s, position_decay=d)
                 for k in (20, 50, 100, 200) for s in (500, 2000) for d in (True, False)],
        "markov": [MarkovTransitions(window=w, history=h, decay=dec)
                   for w in (1, 2, 3) for h in (1, 2, 3) for dec in (0.3, 0.6)],
    }
    metrics: dict[str, Any] = {
        "protocol": f"last {TEST_DAYS} days of sessions as test, next-view of every prefix, "
                    f"validation = last {TEST_DAYS} days of train",
        "sessions": {"train": len(train), "test": len(test), "validation": len(validation)},
    }
    for family, candidates in grids.items():
        tried = [(score(m, fit_part, validation)["mrr@20"], i) for i, m in enumerate(candidates)]
        best = candidates[max(tried)[1]]
        result = score(best, train, test)
        result["params"] = best.get_params()
        metrics[family] = result
        print(family, json.dumps(result), flush=True)
    metrics["popularity"] = score(Popularity(), train, test)
    metrics["popularity_decay7"] = score(Popularity(half_life_days=7), train, test)
    print("popularity", json.dumps(metrics["popularity"]))
    path = write_results("session", metrics)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
