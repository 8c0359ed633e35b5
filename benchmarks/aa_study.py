"""A/A study of the CTR test at scale: is the false-positive rate at alpha 0.05 noise or a bias?

Run: python benchmarks/aa_study.py [--runs-per-seed 2000] [--seeds 0,1,2,3,4]

Each run is a whole A/A experiment through the real hashing (``assign``) and analysis
(``analyze``: CTR as a per-user ratio metric, delta method) on the Online Retail world of
``benchmarks/simulator.py`` (2,000 units per run). The pooled rate and its Wilson interval say
whether the test keeps its nominal level: a bias shows as an interval that excludes alpha.
Results in ``benchmarks/results/aa_study.json``.
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
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset",
        default=str(
            ROOT.parent / "shared" / "datasets" / "online_retail_uci" / "online_retail.csv.gz"
        ),
    )
    parser.add_argument("--runs-per-seed", type=int, default=2000)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    args = parser.parse_args()
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    cfg = SimulationConfig(dataset=args.dataset)
    load_before = os.getloadavg()
    start, cpu_start = time.perf_counter(), time.process_time()
    m, pop, price = read_retail_purchases(args.dataset, n_items=cfg.n_items)
    world = fit_world(m, pop, price, rank=cfg.rank)
    metrics = aa_study(world, runs=args.runs_per_seed, units=cfg.aa_units, seeds=seeds)
    metrics["units_per_run"] = cfg.aa_units
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    metrics["cpu_seconds"] = round(time.process_time() - cpu_start, 1)
    path = write_results(
        "aa_study",
        metrics,
        load_average_before=[round(x, 2) for x in load_before],
        load_average_after=[round(x, 2) for x in os.getloadavg()],
    )
    for key, value in metrics.items():
        print(f"{key:32} {value}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
