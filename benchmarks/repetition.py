"""Anti-repetition measured through the served chain on Online Retail: three visits in a row
without a click, with the default penalty (0.5 per unclicked impression within 24 hours) and
switched off (the behaviour before it existed: the same answer three times).

The bundle is trained on the 11 months before the cut-off (temporal split, last 30 days test,
README cleaning); the online state holds each customer's train purchases; each sampled test
customer asks for 10 items three times at the cut-off. Figures per setting: the share of page-1
items shown again on visit 2, the distinct items shown over the three visits, and the share of
customers for whom one of the three pages holds an item they bought (new to them) in the test
month (hit rate over three visits), with a bootstrap 95 % interval of the difference.

    python benchmarks/repetition.py [--users 600]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_results
from benchmarks.online_retail import SOURCE, TEST_DAYS
from personify.data.online_retail import load_purchase_log, log_to_interactions
from personify.data.splits import temporal_split
from personify.domain.events import Event
from personify.domain.items import Item
from personify.jobs.training import TrainingConfig, train_bundle
from personify.serving.catalog import CatalogSnapshot
from personify.serving.chain import RecommendationService
from personify.serving.request import RecommendationRequest, Repetition
from personify.storage.online.memory import MemoryOnlineState
from personify.storage.online.port import OnlineStateConfig

T = "default"
VISITS = 3
N = 10


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=600)
    args = parser.parse_args()
    started = time.perf_counter()
    data = log_to_interactions(load_purchase_log(SOURCE, drop_non_products=True))
    train, test = temporal_split(data, test_days=TEST_DAYS)
    ids, items = train.users.ids, train.items.ids
    cutoff = datetime.fromtimestamp(float(train.timestamps.max()) + 1, UTC)  # type: ignore[union-attr]
    events = [
        Event.model_construct(event_id=f"e{k}", type="purchase", user_id=ids[u], item_id=items[i],
                              timestamp=datetime.fromtimestamp(float(t), UTC))
        for k, (u, i, t) in enumerate(zip(train.user_idx.tolist(), train.item_idx.tolist(),
                                          train.timestamps.tolist(), strict=True))  # type: ignore[union-attr]
    ]
    config = TrainingConfig(factors=None, user_model=None, learn_blend=False, train_ranker=False)
    bundle, _ = train_bundle(events, config)
    print(f"trained in {time.perf_counter() - started:.0f}s", flush=True)
    state = MemoryOnlineState(OnlineStateConfig(recent_cap=200, user_ttl=cutoff - datetime(
        2000, 1, 1, tzinfo=UTC)))
    state.apply(T, sorted(events, key=lambda e: e.timestamp), now=cutoff)
    catalog = CatalogSnapshot([Item(item_id=i, title=i) for i in items])
    bought = {u: set(train.matrix.getrow(u).indices.tolist()) for u in range(train.n_users)}
    wanted: dict[str, set[str]] = {}
    for u, i in zip(test.user_idx.tolist(), test.item_idx.tolist(), strict=True):
        if bought.get(u) and i not in bought[u]:
            wanted.setdefault(ids[u], set()).add(items[i])
    rng = np.random.default_rng(0)
    people = sorted(wanted)
    people = [people[j] for j in rng.choice(len(people), min(args.users, len(people)),
                                            replace=False)]
    results: dict[str, dict[str, float]] = {}
    hits_by: dict[str, np.ndarray] = {}
    for label, penalty in (("off", 1.0), ("penalty_0.5", 0.5), ("penalty_0.8", 0.8)):
        svc = RecommendationService(bundles=lambda t: bundle, catalogs=lambda t: catalog,
                                    state=state, clock=lambda: cutoff)
        repeated, distinct, hits = [], [], []
        for person in people:
            request = RecommendationRequest(user_id=person, n=N,
                                            repetition=Repetition(penalty=penalty))
            pages = [[i.item_id for i in svc.recommend(T, request).items] for _ in range(VISITS)]
            repeated.append(len(set(pages[0]) & set(pages[1])) / max(1, len(pages[0])))
            shown = set().union(*pages)
            distinct.append(len(shown))
            hits.append(float(bool(shown & wanted[person])))
        hits_by[label] = np.asarray(hits)
        results[label] = {
            "repeated_on_visit_2": round(float(np.mean(repeated)), 4),
            "distinct_items_over_3_visits": round(float(np.mean(distinct)), 2),
            "hit_rate_over_3_visits": round(float(np.mean(hits)), 4),
        }
        print(label, results[label], flush=True)
    boot = rng.integers(0, len(people), (2000, len(people)))
    diff = hits_by["penalty_0.5"][boot].mean(axis=1) - hits_by["off"][boot].mean(axis=1)
    low, high = np.percentile(diff, [2.5, 97.5])
    metrics = {
        "protocol": f"Online Retail, temporal split (last {TEST_DAYS} days test), {len(people)} "
                    f"test customers with a train history, {VISITS} visits of {N} without a click",
        "repeated_on_visit_2_off": results["off"]["repeated_on_visit_2"],
        "repeated_on_visit_2_default": results["penalty_0.5"]["repeated_on_visit_2"],
        "distinct_items_over_3_visits_off": results["off"]["distinct_items_over_3_visits"],
        "distinct_items_over_3_visits_default":
            results["penalty_0.5"]["distinct_items_over_3_visits"],
        "hit_rate_over_3_visits_off": results["off"]["hit_rate_over_3_visits"],
        "hit_rate_over_3_visits_default": results["penalty_0.5"]["hit_rate_over_3_visits"],
        "hit_rate_gain_ci95": [round(float(low), 4), round(float(high), 4)],
        "settings": results,
        "users": len(people),
        "load_average": os.getloadavg(),
    }
    path = write_results("repetition", metrics)
    print(f"wrote {path} in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
