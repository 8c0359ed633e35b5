"""How long loading a served model version stalls the rest of the process (a hot swap).

A server loads a newly promoted version in a background thread while its event loop answers
requests; whatever part of the load holds the GIL stalls every request for that long. This script
writes one bundle of the Gowalla default's shapes (synthetic values: 41k items x 200 neighbours,
30k user lists x 100 entries, 64-d factors; ~114 MB) in two formats, the plain pickle of earlier
releases and the current file with out-of-band, memory-mapped arrays, then loads each several
times in a background thread while the main thread ticks every millisecond. Reported per format:
the median load time and the median of each load's longest tick gap (the longest stall a request
would see), next to the longest gap without any load (the machine's own noise), and the ratios
new / old measured in the same run. Absolute figures are inflated on a loaded machine.

Run: python benchmarks/model_load.py [--loads N]
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import write_results
from personify.data.vocabulary import Vocabulary
from personify.serving.bundle import ModelBundle
from personify.serving.factors import FactorModel
from personify.serving.user_lists import UserLists
from personify.storage.model_files import dump_artifact, load_artifact

ITEMS, USERS, NEIGHBOURS, LIST_LENGTH, DIM = 40_981, 29_858, 200, 100, 64


def bundle() -> ModelBundle:
    rng = np.random.default_rng(0)
    items = Vocabulary([f"p{i}" for i in range(ITEMS)])
    users = Vocabulary([f"u{i}" for i in range(USERS)])
    nnz = ITEMS * NEIGHBOURS
    neighbours = sp.csr_matrix(
        (
            rng.random(nnz, dtype=np.float32),
            rng.integers(0, ITEMS, nnz).astype(np.int32),
            np.arange(0, nnz + 1, NEIGHBOURS, dtype=np.int32),
        ),
        shape=(ITEMS, ITEMS),
    )
    entries = USERS * LIST_LENGTH
    lists = UserLists(
        "bspm",
        users,
        np.arange(0, entries + 1, LIST_LENGTH, dtype=np.int64),
        rng.integers(0, ITEMS, entries).astype(np.int32),
        rng.random(entries, dtype=np.float32),
        rng.integers(0, ITEMS, entries).astype(np.int32),
        0.0,
    )
    factors = FactorModel.build(
        "v", rng.random((ITEMS, DIM)), regularization=0.05, alpha=10.0,
        event_weights={"view": 1.0},
    )
    return ModelBundle(
        "v", items, neighbours, rng.random(ITEMS, dtype=np.float32), factors=factors,
        user_lists=lists,
    )


def legacy_pickle(obj: Any) -> bytes:
    """The plain pickle earlier releases wrote (the vocabularies with their index dicts)."""
    getstate, setstate = Vocabulary.__getstate__, Vocabulary.__setstate__
    del Vocabulary.__getstate__, Vocabulary.__setstate__
    try:
        return pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
    finally:
        Vocabulary.__getstate__ = getstate  # type: ignore[method-assign]
        Vocabulary.__setstate__ = setstate  # type: ignore[method-assign]


class Ticker:
    """The main thread's longest gap between 1 ms sleeps while ``run`` is busy elsewhere."""

    def gaps_during(self, work: Any) -> tuple[float, float]:
        done = threading.Event()
        took: list[float] = []

        def run() -> None:
            t0 = time.perf_counter()
            work()
            took.append(time.perf_counter() - t0)
            done.set()

        thread = threading.Thread(target=run)
        longest = 0.0
        last = time.perf_counter()
        thread.start()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now
        thread.join()
        return took[0] * 1000, longest * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loads", type=int, default=7)
    args = parser.parse_args()
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="personify-model-load-"))
    model = bundle()
    old_path, new_path = work / "old.pkl", work / "new.pkl"
    old_path.write_bytes(legacy_pickle(model))
    with open(new_path, "wb") as fh:
        for chunk in dump_artifact(model):
            fh.write(chunk)
    del model
    ticker = Ticker()
    ticker.gaps_during(lambda: load_artifact(new_path))  # imports, page cache
    ticker.gaps_during(lambda: load_artifact(old_path))
    noise = [ticker.gaps_during(lambda: time.sleep(0.3))[1] for _ in range(args.loads)]
    runs: dict[str, list[tuple[float, float]]] = {"pickle": [], "mapped": []}
    for _ in range(args.loads):  # interleaved, so both formats see the same load
        runs["pickle"].append(ticker.gaps_during(lambda: load_artifact(old_path)))
        runs["mapped"].append(ticker.gaps_during(lambda: load_artifact(new_path)))
    med = {
        name: (statistics.median(t for t, _ in got), statistics.median(g for _, g in got))
        for name, got in runs.items()
    }
    metrics = {
        "load_ms_pickle": round(med["pickle"][0], 1),
        "load_ms_mapped": round(med["mapped"][0], 1),
        "longest_stall_ms_pickle": round(med["pickle"][1], 1),
        "longest_stall_ms_mapped": round(med["mapped"][1], 1),
        "longest_gap_ms_idle": round(statistics.median(noise), 1),
        "load_time_ratio_mapped_to_pickle": round(med["mapped"][0] / med["pickle"][0], 3),
        "stall_ratio_mapped_to_pickle": round(med["mapped"][1] / med["pickle"][1], 3),
    }
    details = {
        "file_mb": {
            "pickle": round(old_path.stat().st_size / 1e6, 1),
            "mapped": round(new_path.stat().st_size / 1e6, 1),
        },
        "runs_ms_load_and_longest_stall": runs,
        "idle_gaps_ms": noise,
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "note": "synthetic bundle of the Gowalla default's shapes; absolute times inflated "
        "when the machine is loaded, compare the ratios",
    }
    for path in (old_path, new_path):
        path.unlink()
    work.rmdir()
    print(metrics)
    print(f"wrote {write_results('model_load', metrics, details=details)}")


if __name__ == "__main__":
    main()
