"""Insights benchmark on UCI Online Retail (Chen 2015, CC BY 4.0): churn (no purchase in the next
90 days) and purchase propensity (next 30 days) with LightGBM against the recency rule and BG/NBD
on the same temporal split, and BG/NBD + Gamma-Gamma 90-day spend (CLV).

Temporal protocol (``personify.insights.predictions.evaluate``), end = the day after the last
invoice (2011-12-10): the test cut is end - horizon (features from everything before it, labels
from the horizon after it); the model trains on features at test cut - horizon with labels from
the horizon up to the test cut, so no label of the test window is seen. People = customers with
a purchase before the cut. Bootstrap (percentile, 200 resamples of the test people) 95 %
intervals of the model's AUC gain and Brier improvement over each baseline.

Cleaning as the dataset README suggests (no cancellations, Quantity > 0, a CustomerID); spend =
Quantity x UnitPrice.

    python benchmarks/insights.py [--rounds 200]

Segments (``--segments``, default on): the same customers, users, items and events (returns
included) in an in-process store, the population fitted at the end of the data, three segments
(one referring to another); then, for 300 random customers, one new purchase through the
``EventIngestor`` with the insights listener, timing the whole ingest call (durable append +
cache drop + the person's re-evaluation + entry / exit notification): the membership is current
when the call returns. Then a full re-evaluation of every customer.

Text and tag figures (``emotion_macro_f1_cedr``, ``sentiment_macro_f1_goemotions``,
``texts_per_second``, ``tag_precision@3``) are not measured yet.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_results
from personify.data.online_retail import load_purchase_log
from personify.insights.predictions import DAY, activity_of_rows, evaluate, summary

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "online_retail_uci"
NOT_MEASURED = ["emotion_macro_f1_cedr", "sentiment_macro_f1_goemotions", "texts_per_second",
                "tag_precision@3"]
SEGMENTS = {
    "big_spenders": "monetary >= 2000",
    "at_risk_regulars": 'lifecycle in ["at_risk", "lapsed"] and frequency >= 3',
    "vip": 'segment("big_spenders") and rfm.r >= 4 and p_alive > 0.5',
}


def segment_benchmark(people: int = 300) -> dict[str, float]:
    """Membership latency on ingest and the full re-evaluation time (see the module doc)."""
    import random
    import tempfile
    from datetime import timedelta

    from personify.data.online_retail import read_online_retail
    from personify.domain.events import Event
    from personify.ingestion import EventIngestor
    from personify.insights.population import PopulationFiles
    from personify.insights.segments import SegmentFiles, SegmentIn, SegmentTracker
    from personify.insights.service import InsightsService
    from personify.jobs.insights import fit_insights
    from personify.storage.registry import open_stores

    data = read_online_retail(DATA / "online_retail.csv.gz", anonymous="skip")
    stores = open_stores("memory://")
    stores.users.upsert("default", data.users)
    stores.catalog.upsert("default", data.items)
    events = list(data.events)
    for start in range(0, len(events), 20_000):
        stores.events.append("default", events[start:start + 20_000])
    end = max(e.timestamp for e in events) + timedelta(days=1)
    root = tempfile.mkdtemp(prefix="insights-bench-")
    fit_insights(stores, root, "default", as_of=end, clock=lambda: end)
    clock = lambda: end  # noqa: E731
    files = SegmentFiles(root, clock)
    for sid, text in SEGMENTS.items():
        files.put("default", sid, SegmentIn(text=text))
    tracker = SegmentTracker(files, clock)
    changes: list[tuple[str, bool]] = []
    tracker.listeners.append(lambda t, u, s, entered, at: changes.append((s, entered)))
    service = InsightsService(events=stores.events, users=stores.users, catalog=stores.catalog,
                              populations=PopulationFiles(root), may_profile=lambda t, u: True,
                              tracker=tracker, clock=clock)
    ingestor = EventIngestor(stores.events, listeners=[service.on_events], clock=clock)
    customers = [u.user_id for u in data.users]
    started = time.perf_counter()
    for user_id in customers:
        service.refresh("default", user_id)
    full = time.perf_counter() - started
    counts = tracker.counts("default")
    rng = random.Random(0)
    items = [i.item_id for i in data.items if i.price]
    latencies: list[float] = []
    for n, user_id in enumerate(rng.sample(customers, people)):
        event = Event(event_id=f"bench-{n}", type="purchase", user_id=user_id,
                      item_id=rng.choice(items), price=2500.0, quantity=1,
                      timestamp=end - timedelta(minutes=1))
        t0 = time.perf_counter()
        ingestor.ingest("default", [event])
        latencies.append((time.perf_counter() - t0) * 1000)
    lat = np.asarray(latencies)
    return {
        "segment_membership_p99_ms": float(np.percentile(lat, 99)),
        "segment_membership_p50_ms": float(np.percentile(lat, 50)),
        "segment_full_reevaluation_s": full,
        "segment_customers": float(len(customers)),
        "segment_events_in_store": float(len(events)),
        "segment_counts": counts,  # type: ignore[dict-item]
        "segment_entries_on_ingest": float(sum(1 for _, entered in changes if entered)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200, help="bootstrap resamples")
    parser.add_argument("--no-segments", action="store_true", help="skip the segment phase")
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.perf_counter()
    log = load_purchase_log(DATA / "online_retail.csv.gz")
    amount = log.quantity.astype(np.float64) * log.unit_price.astype(np.float64)
    activity = activity_of_rows(zip(log.customer.tolist(), log.timestamp.tolist(),
                                    ["purchase"] * len(log), amount.tolist(), strict=True))
    end = (float(log.timestamp.max()) // DAY + 1) * DAY
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    report = evaluate(activity, end, rounds=args.rounds)
    seconds = time.perf_counter() - started
    metrics: dict[str, float | None] = dict(summary(report))
    churn = report["churn"]
    metrics["churn_auc_bgnbd_no_purchase_baseline"] = churn["bgnbd_no_purchase"]["auc"]
    metrics["churn_brier_recency_baseline"] = churn["recency_rule"]["brier"]
    metrics["propensity_auc_recency_baseline"] = report["propensity"]["recency_rule"]["auc"]
    metrics["propensity_auc_bgnbd_no_purchase_baseline"] = (
        report["propensity"]["bgnbd_no_purchase"]["auc"])
    metrics["clv_top_decile_capture"] = report["clv"]["top_decile_capture"]
    if args.no_segments:
        metrics["segment_membership_p99_ms"] = None
    else:
        metrics.update(segment_benchmark())
    for key in NOT_MEASURED:
        metrics[key] = None
    path = write_results(
        "insights", metrics, report=report, lines=len(log), load_seconds=round(loaded, 1),
        evaluation_seconds=round(seconds, 1), bootstrap_rounds=args.rounds,
        load_average_before=load_before, load_average_after=os.getloadavg(),
        not_measured=NOT_MEASURED, segments=SEGMENTS,
    )
    for key, value in metrics.items():
        print(f"{key:48s} {value}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
