"""Context in the untrained chain, measured on Online Retail's timestamps: does the blend gain
from the ``time_of_day`` source (popularity at the request's hour)?

The training log is the 11 months before the cut-off (README cleaning, non-product codes
dropped, every invoice line a purchase); ``personify train``'s blend learner holds out each
sampled customer's last purchase and scores every source as the chain does, ``time_of_day`` at
the held-out purchase's own hour. Reported: the validation hit rate@20 of the chosen weights,
the best rate with ``time_of_day`` switched off, the weights chosen, and the bootstrap-free
binomial standard error of the rates (the one-standard-error rule's noise level).

    python benchmarks/context.py [--blend-users 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_results
from benchmarks.online_retail import SOURCE, TEST_DAYS
from personify.data.online_retail import load_purchase_log, log_to_interactions
from personify.data.splits import temporal_split
from personify.domain.events import Event
from personify.jobs.training import TrainingConfig, train_bundle


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blend-users", type=int, default=2000)
    args = parser.parse_args()
    started = time.perf_counter()
    data = log_to_interactions(load_purchase_log(SOURCE, drop_non_products=True))
    train, _ = temporal_split(data, test_days=TEST_DAYS)
    assert train.timestamps is not None
    ids, items = train.users.ids, train.items.ids
    events = [
        Event.model_construct(event_id=f"e{k}", type="purchase", user_id=ids[u], item_id=items[i],
                              timestamp=datetime.fromtimestamp(float(t), UTC))
        for k, (u, i, t) in enumerate(zip(train.user_idx.tolist(), train.item_idx.tolist(),
                                          train.timestamps.tolist(), strict=True))
    ]
    config = TrainingConfig(factors=None, user_model=None, train_ranker=False,
                            blend_users=args.blend_users)
    _, manifest = train_bundle(events, config)
    rates: dict[str, float] = manifest.metrics["blend_hit_rate@20"]
    learned = manifest.metrics["blend_weights"]
    users = manifest.metrics["blend_users"]
    chosen_key = ",".join(f"{k}={v}" for k, v in learned.items() if k != "collaborative")
    off = {k: r for k, r in rates.items() if "time_of_day=0.0" in k}
    best_off_key = max(off, key=lambda k: off[k])
    best_key = max(rates, key=lambda k: rates[k])
    best = rates[best_key]
    metrics = {
        "protocol": f"Online Retail train months (last {TEST_DAYS} days held back), blend "
                    f"validation: each of {users} sampled customers' last purchase held out, "
                    "hit rate@20 over the chain's sources",
        "hit_rate@20_chosen": rates[chosen_key],
        "hit_rate@20_best": best,
        "hit_rate@20_best_without_time_of_day": off[best_off_key],
        "time_of_day_gain": round(best - off[best_off_key], 4),
        "standard_error": round((best * (1 - best) / users) ** 0.5, 4),
        "weights_chosen": learned,
        "best_without_time_of_day": best_off_key,
        "best_with": best_key,
        "holdout": manifest.metrics.get("blend_holdout"),
        "combinations_evaluated": len(rates),
        "seconds": round(time.perf_counter() - started, 1),
        "load_average": os.getloadavg(),
    }
    path = write_results("context", metrics)
    print(metrics)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
