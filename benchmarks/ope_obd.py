"""Off-policy evaluation on the Open Bandit Dataset sample.

Per campaign (all / men / women) and direction (random -> bts: estimate the Bernoulli Thompson
Sampling policy's click rate from the uniform-random logs; bts -> random: the reverse), run IPS,
SNIPS, DM and DR with 95 % intervals and compare with the on-policy click rate of the other
folder. The evaluation policy's action distribution: uniform 1 / n_items for random (exact); for
BTS, which ignores the user context, its empirical item frequencies per position over the same
week (the main rows), and, as a check, a per-round reconstruction from BTS's own logged
propensities nearest in time (``rows_nearest_propensity``).

Run: python benchmarks/ope_obd.py [--root ../shared/datasets/open_bandit_obd]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._report import write_results  # noqa: E402
from personify.experiments.ope import ActionMeanReward, evaluate_policy  # noqa: E402
from personify.experiments.open_bandit import (  # noqa: E402
    CAMPAIGNS,
    frequency_action_dist,
    load_open_bandit,
    logged_action_dist,
    uniform_action_dist,
)
from personify.experiments.stats import wilson_interval  # noqa: E402


def _rows(campaign: str, direction: str, estimates: list[Any], truth: Any) -> list[dict[str, Any]]:
    lo, hi = wilson_interval(truth.log.reward.sum(), truth.log.n_rounds)
    return [
        {
            "campaign": campaign,
            "direction": direction,
            "estimator": e.estimator,
            "estimate": round(e.value, 6),
            "ci_low": round(e.ci_low, 6),
            "ci_high": round(e.ci_high, 6),
            "on_policy": round(truth.click_rate, 6),
            "on_policy_ci_low": round(lo, 6),
            "on_policy_ci_high": round(hi, 6),
            "covers_on_policy": bool(e.ci_low <= truth.click_rate <= e.ci_high),
        }
        for e in estimates
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", default=str(ROOT.parent / "shared" / "datasets" / "open_bandit_obd")
    )
    args = parser.parse_args()
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    nearest_rows: list[dict[str, Any]] = []
    for campaign in CAMPAIGNS:
        rnd = load_open_bandit(args.root, "random", campaign)
        bts = load_open_bandit(args.root, "bts", campaign)
        pos = rnd.log.position
        assert pos is not None
        freq = frequency_action_dist(bts, pos)
        rows += _rows(
            campaign,
            "random->bts",
            evaluate_policy(rnd.log, freq, make_model=ActionMeanReward),
            bts,
        )
        near, _ = logged_action_dist(bts, rnd.times, pos)
        nearest_rows += _rows(
            campaign,
            "random->bts",
            evaluate_policy(rnd.log, near, make_model=ActionMeanReward),
            bts,
        )
        uni = uniform_action_dist(bts.log.n_rounds, bts.log.n_actions)
        rows += _rows(
            campaign, "bts->random", evaluate_policy(bts.log, uni, make_model=ActionMeanReward), rnd
        )
    covered = sum(r["covers_on_policy"] for r in rows)
    metrics = {
        "rows": rows,
        "rows_nearest_propensity": nearest_rows,
        "intervals_covering_on_policy": f"{covered}/{len(rows)}",
        "seconds": round(time.perf_counter() - start, 2),
    }
    path = write_results("ope_obd", metrics)
    print(f"{'campaign':8} {'direction':12} {'est':6} {'estimate':>9} {'ci':>20} {'on_policy':>9}")
    for r in rows:
        ci = f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]"
        print(
            f"{r['campaign']:8} {r['direction']:12} {r['estimator']:6} {r['estimate']:9.4f}"
            f" {ci:>20} {r['on_policy']:9.4f}"
        )
    print(f"covered {covered}/{len(rows)}; wrote {path}")


if __name__ == "__main__":
    main()
