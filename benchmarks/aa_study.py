"""A/A study of the CTR test at scale: is the false-positive rate at alpha 0.05 noise or a bias?

Run: python benchmarks/aa_study.py [--runs-per-seed 2000] [--seeds 0,1,2,3,4]

Each run is a whole A/A experiment through the real hashing (``assign``) and analysis
(``analyze``: CTR as a per-user ratio metric, delta method) on the Online Retail world of
``benchmarks/simulator.py`` (2,000 units per run). The pooled rate and its Wilson interval say
whether the test keeps its nominal level: a bias shows as an interval that excludes alpha.
Results in ``benchmarks/results/aa_study.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._simulation import Timed, parser, pooled_aa_study  # noqa: E402
from personify.experiments.simulation import SimulationConfig  # noqa: E402


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--runs-per-seed", type=int, default=2000)
    arguments.add_argument("--seeds", default="0,1,2,3,4")
    args = arguments.parse_args()
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    cfg = SimulationConfig(dataset=args.dataset)
    timed = Timed()
    metrics = pooled_aa_study(args.dataset, cfg, runs=args.runs_per_seed, seeds=seeds)
    metrics["units_per_run"] = cfg.aa_units
    timed.write("aa_study", metrics)


if __name__ == "__main__":
    main()
