"""Closed-loop simulator on Online Retail: A/A false positives, power for a planted lift,
personalized vs popularity lift, and bandit regret against uniform allocation.

Run: python benchmarks/simulator.py [--runs 400] [--dataset <online_retail.csv.gz>]
     [--aa-seeds 0,1,2,3,4] [--aa-study-runs 400]

The A/A study repeats the A/A test over several seeds and reports the pooled false-positive rate
with its Wilson interval (``aa_study_*``): a bias shows as an interval that excludes alpha.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._report import write_results  # noqa: E402
from personify.experiments.simulation import (  # noqa: E402
    SimulationConfig,
    aa_study,
    fit_world,
    read_retail_purchases,
    simulate,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset",
        default=str(
            ROOT.parent / "shared" / "datasets" / "online_retail_uci" / "online_retail.csv.gz"
        ),
    )
    parser.add_argument("--runs", type=int, default=400, help="A/A and planted-lift runs each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--aa-seeds", default="0,1,2,3,4",
        help="seeds of the separate A/A study (comma-separated; empty: skip it)",
    )
    parser.add_argument("--aa-study-runs", type=int, default=400, help="A/A runs per seed")
    args = parser.parse_args()
    load_before = os.getloadavg()
    start, cpu_start = time.perf_counter(), time.process_time()
    cfg = SimulationConfig(
        dataset=args.dataset,
        aa_runs=args.runs,
        power_runs=args.runs,
        seed=args.seed,
        bandit_rounds=5000,
    )
    metrics = simulate(cfg)
    seeds = [int(x) for x in args.aa_seeds.split(",") if x.strip()]
    if seeds and args.aa_study_runs > 0:
        m, pop, price = read_retail_purchases(args.dataset, n_items=cfg.n_items)
        world = fit_world(m, pop, price, rank=cfg.rank)
        metrics.update(aa_study(world, runs=args.aa_study_runs, units=cfg.aa_units, seeds=seeds))
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    metrics["cpu_seconds"] = round(time.process_time() - cpu_start, 1)
    load_after = os.getloadavg()
    path = write_results(
        "simulator",
        metrics,
        load_average_before=[round(x, 2) for x in load_before],
        load_average_after=[round(x, 2) for x in load_after],
    )
    for key, value in metrics.items():
        print(f"{key:32} {value}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
