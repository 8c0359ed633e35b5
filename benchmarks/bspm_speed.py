"""BSPM scoring throughput on Gowalla: the panelled, threaded ``BSPM.score`` against the
straightforward formulation it replaced (whole-batch scipy products, four-stage RK4), run
alternately on the same batches so both see the same machine load. Writes
``benchmarks/results/bspm_speed.json``; write-up in docs/benchmarks/bspm_speed.md.

    python benchmarks/bspm_speed.py [--batch 1024] [--rounds 3] [--widths 16 32 64]

Parameters: the Gowalla configuration (factor_dim 576, idl_beta 0.2, T_b 1, K_b 1, T_s 2.5,
K_s 1, rk4, early merge). ``--widths`` also times the current code at other panel widths.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import personify.algorithms.bspm as bspm_module
from benchmarks._report import write_results
from personify.algorithms.bspm import BSPM
from personify.data.gowalla import load_gowalla

DATASET = Path(
    os.environ.get(
        "PERSONIFY_DATASETS_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets")
    )
) / "gowalla_lightgcn"
PARAMS: dict[str, Any] = {"factor_dim": 576, "idl_beta": 0.2, "T_b": 1.0, "K_b": 1,
                          "T_s": 2.5, "K_s": 1, "solver": "rk4", "merge": "early"}


def score_before(model: BSPM, users: np.ndarray) -> np.ndarray:
    """``BSPM.score`` as it was before the panelled version (same fitted state)."""
    rows = model.X_[users]

    def filt(s: np.ndarray) -> np.ndarray:
        return np.asarray(model.normT_ @ (model.norm_ @ s), dtype=np.float32)

    s = np.ascontiguousarray(rows.T.toarray(), dtype=np.float32)
    h = np.float32(model.T_b / model.K_b)
    for _ in range(model.K_b if h else 0):
        s = s + h * (filt(s) - s)
    blurred = s
    vt = model.vt_
    low = np.asarray((rows @ sp.diags(model.di_inv_sqrt_)) @ vt.T, dtype=np.float32)
    idl = np.float32(model.idl_beta) * ((vt.T @ low.T) * model.di_sqrt_[:, None])
    s = blurred + idl if model.merge == "early" else blurred
    h = np.float32(model.T_s / model.K_s)
    for _ in range(model.K_s if h else 0):
        k1 = -filt(s)
        k2 = -filt(s + (h / 2) * k1)
        k3 = -filt(s + (h / 2) * k2)
        k4 = -filt(s + h * k3)
        s = s + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
    if model.merge == "late":
        s = s + idl
    return np.ascontiguousarray(s.T, dtype=np.float32)


def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def top20(scores: np.ndarray) -> np.ndarray:
    part = np.argpartition(-scores, 20, axis=1)[:, :20]
    return np.sort(part, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--widths", type=int, nargs="*", default=[])
    args = parser.parse_args()

    train, _ = load_gowalla(DATASET)
    start = time.perf_counter()
    model = BSPM(**PARAMS).fit(train)
    fit_seconds = time.perf_counter() - start
    n_users = model.X_.shape[0]
    rng = np.random.default_rng(0)
    load_start = os.getloadavg()
    before: list[tuple[float, float]] = []
    after: list[tuple[float, float]] = []
    max_abs = max_rel = 0.0
    top_equal: list[float] = []
    model.score(np.arange(32))  # warm-up (thread pool, page cache)
    for r in range(args.rounds):
        users = np.sort(rng.choice(n_users, args.batch, replace=False))
        pair: list[tuple[str, Callable[[], np.ndarray]]] = [
            ("before", partial(score_before, model, users)),
            ("after", partial(model.score, users)),
        ]
        results: dict[str, np.ndarray] = {}
        for name, fn in pair if r % 2 == 0 else pair[::-1]:
            out, wall, cpu = timed(fn)
            results[name] = out
            (before if name == "before" else after).append((wall, cpu))
            print(f"round {r} {name}: {wall:.2f}s wall {cpu:.2f}s cpu "
                  f"{args.batch / wall:.0f} users/s load {os.getloadavg()[0]:.2f}", flush=True)
        diff = float(np.abs(results["before"] - results["after"]).max())
        max_abs = max(max_abs, diff)
        max_rel = max(max_rel, diff / float(np.abs(results["before"]).max()))
        top_equal.append(float(np.mean(np.all(top20(results["before"])
                                               == top20(results["after"]), axis=1))))
        del results
    widths: dict[str, float] = {}
    default_width = bspm_module.PANEL_WIDTH
    users = np.sort(rng.choice(n_users, args.batch, replace=False))
    for width in args.widths:
        bspm_module.PANEL_WIDTH = width
        _, wall, _ = timed(partial(model.score, users))
        widths[str(width)] = round(args.batch / wall, 1)
        print(f"panel width {width}: {args.batch / wall:.0f} users/s", flush=True)
    bspm_module.PANEL_WIDTH = default_width

    def per_second(runs: list[tuple[float, float]]) -> float:
        return round(args.batch / float(np.median([wall for wall, _ in runs])), 1)

    metrics = {
        "batch_size": args.batch,
        "rounds": args.rounds,
        "users_per_second_before": per_second(before),
        "users_per_second_after": per_second(after),
        "speedup": round(per_second(after) / per_second(before), 2),
        "wall_seconds_before": [round(w, 3) for w, _ in before],
        "wall_seconds_after": [round(w, 3) for w, _ in after],
        "cpu_seconds_before": [round(c, 3) for _, c in before],
        "cpu_seconds_after": [round(c, 3) for _, c in after],
        "max_abs_diff": max_abs,
        "max_abs_diff_relative_to_max_score": max_rel,
        "top20_sets_identical_fraction": round(float(np.mean(top_equal)), 5),
        "users_per_second_by_panel_width": widths,
        "fit_seconds": round(fit_seconds, 1),
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
    }
    path = write_results("bspm_speed", metrics, params=PARAMS,
                         default_panel_width=default_width, workers=os.cpu_count())
    print(path)


if __name__ == "__main__":
    main()
