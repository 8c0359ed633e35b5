"""Closed-loop simulator on Online Retail: A/A false positives, power for a planted lift,
personalized vs popularity lift, and bandit regret against uniform allocation.

Run: python benchmarks/simulator.py [--runs 400] [--dataset <online_retail.csv.gz>]
     [--aa-seeds 0,1,2,3,4] [--aa-study-runs 400]

The A/A study repeats the A/A test over several seeds and reports the pooled false-positive rate
with its Wilson interval (``aa_study_*``): a bias shows as an interval that excludes alpha.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._simulation import Timed, parser, pooled_aa_study  # noqa: E402
from personify.experiments.simulation import SimulationConfig, simulate  # noqa: E402


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--runs", type=int, default=400, help="A/A and planted-lift runs each")
    arguments.add_argument("--seed", type=int, default=0)
    arguments.add_argument(
        "--aa-seeds", default="0,1,2,3,4",
        help="seeds of the separate A/A study (comma-separated; empty: skip it)",
    )
    arguments.add_argument("--aa-study-runs", type=int, default=400, help="A/A runs per seed")
    args = arguments.parse_args()
    timed = Timed()
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
        metrics.update(pooled_aa_study(args.dataset, cfg, runs=args.aa_study_runs, seeds=seeds))
    timed.write("simulator", metrics)


if __name__ == "__main__":
    main()
