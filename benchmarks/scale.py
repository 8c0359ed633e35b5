"""Training beyond one process: Gowalla through ``personify train --engine spark`` (Spark local
mode) next to the in-process trainer, on a ladder of synthetic sizes built from Gowalla (each
person replicated with perturbation: a replica keeps each of the person's check-ins with
probability 0.9, so the original people's test items stay measurable at every size).

Both engines train the same configuration (RP3beta neighbours k=200, RP3beta per-person lists,
ALS 64 factors — ``implicit`` in process, MLlib on Spark — decayed popularity, the blend
learned on validation); the bundle is served through the real chain
(``personify.jobs.served_evaluation.served_rankings``) for the same sample of test people and
scored with Recall@20 / NDCG@20. Peak memory: the process's VmHWM in process; on Spark the
largest sampled resident set of the driver, its JVM and the Python workers together.

    nice -n 10 python benchmarks/scale.py --engine inprocess --mult 1
    nice -n 10 python benchmarks/scale.py --engine spark --mult 1 [--master local[2]]

Each run read-modify-writes the ``metrics`` of ``benchmarks/results/scale.json`` (other keys,
e.g. the multi-node ones, are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import merge_results
from personify.data.gowalla import load_gowalla
from personify.data.interactions import Interactions
from personify.jobs.served_evaluation import served_rankings
from personify.jobs.training import DEFAULT_PARAMS, TrainingConfig, bundle_from_interactions
from personify.serving.bundle import ModelBundle

DATA = Path(os.environ.get("PERSONIFY_DATASETS_DIR",
                           Path(__file__).resolve().parents[2] / "shared" / "datasets")
            ) / "gowalla_lightgcn"
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
CONFIG = TrainingConfig(params=dict(DEFAULT_PARAMS), user_model="rp3beta",
                        user_params=dict(DEFAULT_PARAMS), factors=64, train_ranker=False)


def ladder(train: Interactions, mult: int, seed: int = 0) -> tuple[list[str], list[str],
                                                                   np.ndarray]:
    """(person ids, item ids, epoch seconds) of ``mult`` copies of Gowalla's training part: the
    original people plus ``mult - 1`` perturbed replicas (each check-in kept with p=0.9)."""
    rng = np.random.default_rng(seed)
    m = train.matrix.tocoo()
    users, items = m.row.astype(np.int64), m.col.astype(np.int64)
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
    rank = np.arange(users.size) - np.repeat(starts, np.diff(np.r_[starts, users.size]))
    stamps = EPOCH.timestamp() + (users % 28) * 86_400.0 + rank
    out_u: list[str] = []
    out_i: list[str] = []
    out_t: list[np.ndarray] = []
    ids = np.asarray(train.users.ids, dtype=object)
    item_ids = np.asarray(train.items.ids, dtype=object)
    for copy in range(mult):
        keep = np.ones(users.size, bool) if copy == 0 else rng.random(users.size) < 0.9
        suffix = "" if copy == 0 else f"~{copy}"
        out_u.extend(f"{u}{suffix}" for u in ids[users[keep]])
        out_i.extend(item_ids[items[keep]].tolist())
        out_t.append(stamps[keep])
    return out_u, out_i, np.concatenate(out_t)


def write_parquet(root: Path, users: list[str], items: list[str], stamps: np.ndarray) -> None:
    """The events as ``personify export --partition-by date`` lays them out (views)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    days = (stamps // 86_400).astype(np.int64)
    u, i = np.asarray(users, dtype=object), np.asarray(items, dtype=object)
    for day in np.unique(days):
        mask = days == day
        folder = root / f"date={datetime.fromtimestamp(int(day) * 86_400, UTC).date()}"
        folder.mkdir(parents=True, exist_ok=True)
        n = int(mask.sum())
        table = pa.table({
            "type": pa.array(["view"] * n), "user_id": pa.array(u[mask].tolist()),
            "anonymous_id": pa.nulls(n, pa.string()), "item_id": pa.array(i[mask].tolist()),
            "timestamp": pa.array((stamps[mask] * 1e6).astype(np.int64)).cast(
                pa.timestamp("us", tz="UTC")),
            "value": pa.nulls(n, pa.float64()), "quantity": pa.nulls(n, pa.float64()),
        })
        pq.write_table(table, folder / "part-00000.parquet", compression="zstd")


def tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and all its descendants (driver + JVM + Python workers)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total / 2**20


class PeakSampler:
    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_mb(os.getpid()))
            self._stop.wait(0.5)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def evaluate(bundle: ModelBundle, train: Interactions, test: Any, n_users: int
             ) -> dict[str, float]:
    from personify.evaluation import metrics

    test = test.matrix.tocsr()
    rng = np.random.default_rng(0)
    candidates = np.flatnonzero(np.diff(test.indptr) > 0)
    users = np.sort(rng.choice(candidates, size=min(n_users, candidates.size), replace=False))
    ranked = served_rankings(bundle, train, users, 20)
    relevant = test[users]
    n_rel = np.diff(relevant.indptr)
    hits = metrics.hit_matrix(ranked, relevant)
    return {"recall@20": round(float(metrics.recall(hits, n_rel, 20).mean()), 5),
            "ndcg@20": round(float(metrics.ndcg(hits, n_rel, 20).mean()), 5),
            "people": int(users.size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["inprocess", "spark"], required=True)
    parser.add_argument("--mult", type=int, default=1)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--eval-users", type=int, default=3000)
    parser.add_argument("--no-eval", action="store_true")
    parser.add_argument("--max-users", type=int, default=None,
                        help="only Gowalla people below this id (a slice; recorded as such)")
    args = parser.parse_args()
    train, test = load_gowalla(DATA, max_users=args.max_users)
    users, items, stamps = ladder(train, args.mult)
    events = len(users)
    key = f"{args.engine}_{args.mult}x" + (f"_first{args.max_users}" if args.max_users else "")
    print(f"{key}: {events:,} events", flush=True)
    metrics: dict[str, Any] = {}
    if args.engine == "inprocess":
        data = Interactions.from_arrays(users, items, None, stamps, items=train.items)
        started = time.perf_counter()
        with PeakSampler() as sampler:
            bundle, manifest = bundle_from_interactions(data, CONFIG, version="scale")
        seconds = time.perf_counter() - started
        peak = max(sampler.peak, _vm_hwm())
        run = {"events": events, "seconds": round(seconds, 1), "peak_mb": round(peak),
               "blend": manifest.metrics.get("blend_weights")}
        metrics[f"inprocess_train_seconds_{args.mult}x"] = round(seconds, 1)
        metrics[f"inprocess_peak_mb_{args.mult}x"] = round(peak)
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
        # estimated, not run to failure: peak memory grows at least linearly with the events
        metrics["inprocess_max_events"] = int(events * memory_mb / max(peak, 1.0))
        run["max_events_estimate"] = "linear from this peak to the machine memory"
    else:
        from personify.jobs.spark.session import spark_session
        from personify.jobs.spark.training import SparkRun, train_on_spark

        with tempfile.TemporaryDirectory(prefix="scale-") as scratch:
            root = Path(scratch) / "events"
            write_parquet(root, users, items, stamps)
            del users, items
            spark = spark_session(args.master, shuffle_partitions=8,
                                  conf={"spark.driver.memory": "6g",
                                        "spark.ui.showConsoleProgress": "false"})
            spark.sparkContext.setLogLevel("ERROR")
            started = time.perf_counter()
            with PeakSampler() as sampler:
                result = train_on_spark(SparkRun(spark, str(root), partitions=8), "default",
                                        CONFIG, version="scale")
            seconds = time.perf_counter() - started
            spark.stop()
        bundle, manifest = result.bundle, result.manifest
        run = {"events": events, "seconds": round(seconds, 1), "peak_mb": round(sampler.peak),
               "stages": manifest.metrics["spark_stages"],
               "mllib_reg_param": bundle.factors.params.get("mllib_reg_param")
               if bundle.factors else None, "blend": manifest.metrics.get("blend_weights"),
               "master": args.master}
        metrics[f"spark_train_seconds_{args.mult}x"] = round(seconds, 1)
        metrics[f"spark_peak_mb_{args.mult}x"] = round(sampler.peak)
    metrics[f"{args.engine}_events_{args.mult}x"] = events
    run["gowalla_people"] = args.max_users or "all"
    if args.max_users:  # a slice: its figures go under their own keys
        metrics = {f"{k}_first{args.max_users}": v for k, v in metrics.items()}
    if not args.no_eval:
        quality = evaluate(bundle, train, test, args.eval_users)
        run["quality"] = quality
        suffix = "" if args.mult == 1 else f"_{args.mult}x"
        suffix += f"_first{args.max_users}" if args.max_users else ""
        metrics[f"{args.engine}_recall@20{suffix}"] = quality["recall@20"]
        metrics[f"{args.engine}_ndcg@20{suffix}"] = quality["ndcg@20"]
    print(json.dumps({key: run}), flush=True)
    merge_results("scale", metrics, {key: "python " + " ".join(sys.argv)},
                  spark_runs={key: run})


def _vm_hwm() -> float:
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


if __name__ == "__main__":
    main()
