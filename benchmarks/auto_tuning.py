"""The served configuration chosen automatically on each dataset's own training data, evaluated
once on its test split through the real serving chain, against each candidate model tuned on the
same validation split with the same budget (``personify evaluate -m served`` underneath).

Per dataset: ``personify.jobs.served_evaluation.served_entries(budget)`` runs the selection on
the training part (a validation split carved from it; nothing of the test split is seen), fits
the served bundle (lists, neighbours, ALS factors, learned blend), asks a
``RecommendationService`` for 20 items per test user, and refits every candidate at the best
parameters its trials found. Metrics are over the test users with training history; the
served-vs-best-single difference gets a paired bootstrap interval (1,000 resamples of users).

    python benchmarks/auto_tuning.py online_retail diginetica
    timeout 5400 python benchmarks/auto_tuning.py gowalla --budget 600
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import RESULTS_DIR, write_results
from personify.algorithms import create_model
from personify.algorithms.base import Recommender
from personify.evaluation import metrics
from personify.evaluation.protocol import warm_and_cold
from personify.evaluation.report import load_dataset

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
NAME = "auto_tuning"
K = 20


def per_user(model: Recommender, train: Any, test: Any, users: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Per-user NDCG@20 and Recall@20 (full ranking, training items masked)."""
    relevant = sp.csr_matrix((sp.csr_matrix(test.matrix) > 0).astype(np.float32))
    n_rel = np.diff(relevant.indptr)
    exclude = sp.csr_matrix(train.matrix)
    ndcg = np.zeros(users.size)
    recall = np.zeros(users.size)
    for lo in range(0, users.size, 1024):
        part = users[lo:lo + 1024]
        ids, _ = model.recommend(part, K, exclude=exclude)
        hits = metrics.hit_matrix(ids, relevant[part])
        ndcg[lo:lo + part.size] = metrics.ndcg(hits, n_rel[part], K)
        recall[lo:lo + part.size] = metrics.recall(hits, n_rel[part], K)
    return ndcg, recall


def bootstrap(values: np.ndarray, n: int = 1000, seed: int = 0) -> list[float]:
    """95 % percentile interval of the mean over resampled users."""
    rng = np.random.default_rng(seed)
    means = np.array([values[rng.integers(0, values.size, values.size)].mean()
                      for _ in range(n)])
    return [round(float(np.quantile(means, 0.025)), 5), round(float(np.quantile(means, 0.975)),
                                                               5)]


def previous() -> dict[str, Any]:
    path = RESULTS_DIR / f"{NAME}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def run(dataset: str, budget: float | None, candidates: bool,
        save: Any = None, retrain: bool = False) -> dict[str, Any]:
    from personify.jobs.served_evaluation import served_entries

    name, split = load_dataset(dataset, DATASETS)
    warm, cold = warm_and_cold(split.train, split.test)
    print(f"{name}: {split.train.n_users} users, {split.train.n_items} items, "
          f"{split.train.matrix.nnz} train / {split.test.matrix.nnz} test, "
          f"{warm.size} warm / {cold.size} cold test users", flush=True)
    load_start = os.getloadavg()
    gc.collect()
    started = time.perf_counter()
    entries = served_entries(budget, candidates=candidates, time_retrain=retrain,
                             progress=lambda what: None)(split, K)
    total = time.perf_counter() - started
    served_model, served_params, served_fit = entries.pop("served")
    out: dict[str, Any] = {
        "train_interactions": int(split.train.matrix.nnz),
        "warm_test_users": int(warm.size), "cold_test_users": int(cold.size),
        "loadavg_start": [round(v, 2) for v in load_start],
        "served_params": served_params,
        "served_fit_seconds": round(served_fit, 1),
        "entries_seconds": round(total, 1),
    }
    ndcg, recall = per_user(served_model, split.train, split.test, warm)
    out["served"] = {"ndcg@20": round(float(ndcg.mean()), 5),
                     "recall@20": round(float(recall.mean()), 5),
                     "ndcg@20_ci95": bootstrap(ndcg)}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    if save is not None:  # the served figure first: candidates take long at full scale
        save({name: {**out, "partial": "candidates not refitted yet"}})
    singles: dict[str, dict[str, Any]] = {}
    best_name, best_values = "", np.zeros(0)
    for entry, (model, params, fit_seconds) in entries.items():
        values, rec = per_user(model, split.train, split.test, warm)
        singles[entry] = {"ndcg@20": round(float(values.mean()), 5),
                          "recall@20": round(float(rec.mean()), 5),
                          "fit_seconds": round(fit_seconds, 1), "params": params}
        if not best_name or values.mean() > best_values.mean():
            best_name, best_values = entry, values
        del model
    popularity = create_model("popularity").fit(split.train)
    pop_ndcg, pop_recall = per_user(popularity, split.train, split.test, warm)
    singles["popularity"] = {"ndcg@20": round(float(pop_ndcg.mean()), 5),
                             "recall@20": round(float(pop_recall.mean()), 5)}
    out["candidates"] = singles
    if best_name:
        out["best_single"] = best_name
        out["best_single_ndcg@20_ci95"] = bootstrap(best_values)
        out["served_minus_best_ndcg@20_ci95"] = bootstrap(ndcg - best_values)
    out["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    return {name: out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+",
                        help="gowalla, yelp2018, online_retail, diginetica")
    parser.add_argument("--budget", type=float, default=None,
                        help="selection seconds (default scaled to the data)")
    parser.add_argument("--no-candidates", action="store_true",
                        help="skip refitting each candidate on train (served only)")
    parser.add_argument("--retrain", action="store_true",
                        help="also time the scheduled retrain that reuses the selection")
    args = parser.parse_args()
    for dataset in args.datasets:
        result = run(dataset, args.budget, not args.no_candidates, save, args.retrain)
        save(result)


def save(result: dict[str, Any]) -> None:
    """Merge one dataset's figures into results/auto_tuning.json (locked: several datasets may
    run in parallel processes)."""
    import fcntl

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with open(RESULTS_DIR / f".{NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _merge(result)


def _merge(result: dict[str, Any]) -> None:
    body = previous()
    per_dataset: dict[str, Any] = dict(body.get("datasets", {}))
    per_dataset.update(result)
    metrics_out: dict[str, Any] = dict(body.get("metrics", {}))
    for name, out in result.items():
        metrics_out[f"served_default_ndcg@20_{name}"] = out["served"]["ndcg@20"]
        metrics_out[f"served_default_recall@20_{name}"] = out["served"]["recall@20"]
        if "best_single" in out:
            metrics_out[f"best_single_ndcg@20_{name}"] = \
                out["candidates"][out["best_single"]]["ndcg@20"]
        selection = out["served_params"].get("selection_seconds")
        reuse = out["served_params"].get("retrain_reuse_seconds")
        if reuse is not None:
            metrics_out[f"retrain_reuse_seconds_{name}"] = reuse
            metrics_out[f"selection_and_fit_seconds_{name}"] = out["served_fit_seconds"]
            metrics_out[f"retrain_reuse_ratio_to_selection_and_fit_{name}"] = round(
                reuse / max(out["served_fit_seconds"], 1e-9), 3)
        if name == "gowalla":
            metrics_out["selection_seconds_gowalla"] = selection
            metrics_out["selection_peak_rss_mb_gowalla"] = \
                out["served_params"].get("peak_rss_mb_after_training")
    print(json.dumps(result, default=str)[:2000], flush=True)
    write_results(NAME, metrics_out, datasets=per_dataset)


if __name__ == "__main__":
    main()
