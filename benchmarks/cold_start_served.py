"""Cold-start items on Online Retail measured through the served chain (not only offline).

The ``held_out_items`` split of ``benchmarks/cold_start.py`` (a seeded random 20 % of products
lose all their purchases from train; test = those products' purchases by people with a train
purchase). The product is then set up as a shop would run it: every product is in the
catalogue with its title and categories (the held-out ones too: new products nobody bought
yet), a bundle is trained on the train events by the product's own training (RP3beta
neighbours and popularity; no selection, blend, ranker or factors, for time), the live state
holds everyone's train purchases (people it no longer holds are read from their stored events,
as the engine does), and each sampled person asks the
``RecommendationService`` for 20 items with the default sources. Measured in the same run:

- ``served_default``: the default chain (with ``cold_content`` at its default weight);
- ``served_cold_content_weight_1``: the same with ``cold_content`` weighted 1 (as much as
  ``collaborative``);
- ``served_without_cold_content``: the same sources except ``cold_content`` (the chain before
  it existed);
- ``served_cold_content_only``: ``cold_content`` alone;
- ``served_cold_slots_2`` / ``served_cold_slots_5``: the default chain with 2 / 5 of the 20
  places kept for cold items (``cold_slots``: the best ``cold_content`` items replace the
  lowest-ranked others, spread through the list).

Recall@20 / NDCG@20 over the whole catalogue (relevant = the person's held-out test products),
as ``all_items_*`` of the offline file. Merged into ``results/cold_start.json`` under
``served_held_out_items`` (the offline figures are kept).

    nice -n 10 python benchmarks/cold_start_served.py [--users 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import RESULTS_DIR, hardware
from benchmarks.online_retail import SOURCE
from personify.data.online_retail import load_purchase_log, log_to_interactions
from personify.data.splits import cold_start_items
from personify.domain.events import Context, Event
from personify.domain.items import Item
from personify.evaluation.metrics import ndcg, recall
from personify.jobs.training import TrainingConfig, train_bundle
from personify.serving.catalog import CatalogSnapshot
from personify.serving.chain import RecommendationService
from personify.serving.request import RecommendationRequest, Repetition
from personify.storage.online.memory import MemoryOnlineState

K = 20
TENANT = "default"


def _events(data: Any) -> list[Event]:
    users, items = data.users.ids, data.items.ids
    times = data.timestamps
    return [
        Event.model_construct(
            event_id=f"e{n}", type="purchase", user_id=users[int(u)], item_id=items[int(i)],
            timestamp=datetime.fromtimestamp(float(t), UTC), properties={}, context=Context(),
        )
        for n, (u, i, t) in enumerate(zip(data.user_idx, data.item_idx, times, strict=True))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000, help="people sampled (seeded)")
    args = parser.parse_args()
    started = time.perf_counter()
    data = log_to_interactions(load_purchase_log(SOURCE), weight="count")
    train, test = cold_start_items(data, 0.2, seed=0)
    known = np.zeros(train.n_items, dtype=bool)
    known[np.unique(train.item_idx)] = True
    catalog = CatalogSnapshot([
        Item(item_id=item_id, title=str(data.item_features["title"][k])[:200] or item_id,
             categories=[str(c) for c in cast(list[str], data.item_features["categories"][k])])
        for k, item_id in enumerate(data.items.ids)
    ])
    events = _events(train)
    bundle, _ = train_bundle(events, TrainingConfig(
        learn_blend=False, train_ranker=False, user_model=None, factors=None))
    state = MemoryOnlineState()
    assert train.timestamps is not None, "the purchase log has timestamps"
    order = np.argsort(train.timestamps, kind="stable")
    for start in range(0, len(order), 20_000):
        state.apply(TENANT, [events[int(j)] for j in order[start:start + 20_000]])
    now = datetime.fromtimestamp(float(train.timestamps.max()) + 86_400, UTC)
    stored: dict[str, list[Event]] = {}
    for j in order[::-1]:  # newest first, as the event store answers
        e = events[int(j)]
        assert e.user_id is not None
        bucket = stored.setdefault(e.user_id, [])
        if len(bucket) < 100:
            bucket.append(e)
    # the product's fallback for people the live state no longer holds (older than its
    # user_ttl): their newest stored events (Engine.history reads 100 from the event store)
    service = RecommendationService(bundles=lambda t: bundle, catalogs=lambda t: catalog,
                                    state=state, clock=lambda: now,
                                    history=lambda t, subject: stored.get(subject, []))
    relevant: dict[str, set[str]] = {}
    has_train = set(np.unique(train.user_idx).tolist())
    for u, i in zip(test.user_idx, test.item_idx, strict=True):
        if int(u) in has_train:
            relevant.setdefault(test.users.ids[int(u)], set()).add(test.items.ids[int(i)])
    people = sorted(relevant)
    rng = np.random.default_rng(0)
    sample = sorted(rng.choice(people, size=min(args.users, len(people)), replace=False))
    default = list(service.source_order)
    variants: dict[str, tuple[list[str] | None, float | None, int]] = {
        "served_default": (None, None, 0),
        "served_cold_content_weight_1": (None, 1.0, 0),
        "served_without_cold_content": ([s for s in default if s != "cold_content"], None, 0),
        "served_cold_content_only": (["cold_content"], None, 0),
        "served_cold_slots_2": (None, None, 2),
        "served_cold_slots_5": (None, None, 5),
    }
    load = os.getloadavg()
    out: dict[str, Any] = {"users": len(sample), "users_with_test_purchases": len(people),
                           "new_items": int((~known).sum()), "k": K}
    for name, (sources, weight, slots) in variants.items():
        bundle.source_weights.pop("cold_content", None)
        if weight is not None:
            bundle.source_weights["cold_content"] = weight
        hits = np.zeros((len(sample), K), dtype=bool)
        counts = np.zeros(len(sample), dtype=np.int64)
        new_shown = 0
        t0 = time.perf_counter()
        for row, person in enumerate(sample):
            request = RecommendationRequest(user_id=person, n=K, sources=sources,
                                            log_impression=False, cold_slots=slots,
                                            repetition=Repetition(penalty=1.0))
            ids = [i.item_id for i in service.recommend(TENANT, request).items]
            wanted = relevant[person]
            for col, item_id in enumerate(ids[:K]):
                hits[row, col] = item_id in wanted
                new_shown += not known[data.items.index(item_id)]
            counts[row] = len(wanted)
        seconds = time.perf_counter() - t0
        out[name] = {
            f"recall@{K}": round(float(recall(hits, counts, K).mean()), 5),
            f"ndcg@{K}": round(float(ndcg(hits, counts, K).mean()), 5),
            "new_items_per_answer": round(new_shown / len(sample), 3),
            "ms_per_request": round(1000 * seconds / len(sample), 2),
        }
        print(name, json.dumps(out[name]), flush=True)
    out["load_average"] = [round(x, 2) for x in load]
    out["seconds"] = round(time.perf_counter() - started, 1)
    out["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    out["command"] = "python " + " ".join(sys.argv)
    out["note"] = ("sampled people of the held_out_items split; the offline all_items_* figures "
                   "in held_out_items are over all its users")
    path = RESULTS_DIR / "cold_start.json"
    body = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {
        "name": "cold_start", "metrics": {}, "hardware": hardware(),
        "date": out["date"], "command": out["command"]}
    body["metrics"]["served_held_out_items"] = out
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
