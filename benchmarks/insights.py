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

Segments (skip with ``--no-segments``; ``--no-predictions`` runs only them and keeps the
previous prediction figures): the same customers, users, items and events (returns included) in
an in-process store, the population fitted at the end of the data, three segments (one referring
to another). First a full re-evaluation of every customer (timed: wall and CPU), three ways in
the same run: one person at a time on a service of its own (``refresh`` per person, what
``POST /v1/segments/refresh`` did before: the baseline), then ``refresh_many`` cold (events read
per chunk of 200 people, catalogue items once; the counts must equal the baseline's), then
``refresh_many`` again warm (people with live facts re-evaluated from them). Then 600 random
customers get one new purchase each through the ``EventIngestor`` with the insights listener,
timing the whole ingest call (durable append + cache drop + the person's re-evaluation + entry /
exit notification): the membership is current when the call returns. Every other one of them
first loses their live facts, so their update takes the path that live facts replaced (their
insights recomputed from their events): the baseline, measured interleaved in the same run.
Load averages are recorded next to each phase.

Clusters (skip with ``--no-clusters``): the customers' behavioural features at the end of the
data and 90 days earlier, clustered by ``personify.insights.clusters`` (k by silhouette); the
later fit matched to the earlier one; the agreement is the share of people in both whose cluster
id stayed.

Text and tag figures (``emotion_macro_f1_cedr``, ``sentiment_macro_f1_goemotions``,
``texts_per_second``, ``tag_precision@3``) are copied from results/text.json and
results/tags.json (benchmarks/text_insights.py, benchmarks/tags.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import RESULTS_DIR, write_results
from personify.data.online_retail import load_purchase_log
from personify.insights.predictions import DAY, activity_of_rows, evaluate, summary

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "online_retail_uci"
TEXT_KEYS = ["emotion_macro_f1_cedr", "sentiment_macro_f1_goemotions", "texts_per_second",
             "texts_per_cpu_second", "tag_precision@3", "tag_recall@3"]
SEGMENTS = {
    "big_spenders": "monetary >= 2000",
    "at_risk_regulars": 'lifecycle in ["at_risk", "lapsed"] and frequency >= 3',
    "vip": 'segment("big_spenders") and rfm.r >= 4 and p_alive > 0.5',
}


def _percentiles(values: list[float], prefix: str) -> dict[str, float]:
    lat = np.asarray(values)
    return {f"{prefix}_p50_ms": float(np.percentile(lat, 50)),
            f"{prefix}_p99_ms": float(np.percentile(lat, 99)),
            f"{prefix}_max_ms": float(lat.max())}


def segment_benchmark(people: int = 300) -> dict[str, Any]:
    """Membership latency on ingest, against the full recomputation it replaced, and the full
    re-evaluation time (see the module doc)."""
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
    # before: one person at a time (what POST /v1/segments/refresh did), on a service and
    # tracker of its own so that nothing it keeps helps the batch
    one_tracker = SegmentTracker(files, clock)
    one_by_one = InsightsService(events=stores.events, users=stores.users, catalog=stores.catalog,
                                 populations=PopulationFiles(root), may_profile=lambda t, u: True,
                                 tracker=one_tracker, clock=clock)
    load_one = os.getloadavg()
    started, cpu = time.perf_counter(), time.process_time()
    for user_id in customers:
        one_by_one.refresh("default", user_id)
    one, one_cpu = time.perf_counter() - started, time.process_time() - cpu
    del one_by_one
    # after: InsightsService.refresh_many, cold (nothing kept), then warm (live facts kept)
    users = list(data.users)
    load_full = os.getloadavg()
    started, cpu = time.perf_counter(), time.process_time()
    service.refresh_many("default", users)
    full, full_cpu = time.perf_counter() - started, time.process_time() - cpu
    counts = tracker.counts("default")
    if counts != one_tracker.counts("default"):
        raise SystemExit(f"batch counts {counts} != one by one {one_tracker.counts('default')}")
    load_warm = os.getloadavg()
    started, cpu = time.perf_counter(), time.process_time()
    service.refresh_many("default", users)
    warm, warm_cpu = time.perf_counter() - started, time.process_time() - cpu
    rng = random.Random(0)
    items = [i.item_id for i in data.items if i.price]
    sample = rng.sample(customers, 2 * people)
    n = 0

    def ingest(user_id: str) -> tuple[float, float]:
        nonlocal n
        n += 1
        event = Event(event_id=f"bench-{n}", type="purchase", user_id=user_id,
                      item_id=rng.choice(items), price=2500.0, quantity=1,
                      timestamp=end - timedelta(minutes=1))
        t0, c0 = time.perf_counter(), time.process_time()
        ingestor.ingest("default", [event])
        return (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000

    # live: everyone has live facts after the full evaluation; baseline: the path this replaced
    # (no live facts: the person's insights are recomputed from their events), alternating so
    # both see the same load
    live: list[tuple[float, float]] = []
    baseline: list[tuple[float, float]] = []
    load_ingest = os.getloadavg()
    for i, user_id in enumerate(sample):
        if i % 2:
            service._live.pop(("default", user_id), None)
            baseline.append(ingest(user_id))
        else:
            live.append(ingest(user_id))
    out: dict[str, Any] = {
        **_percentiles([w for w, _ in live], "segment_membership"),
        "segment_membership_p99_cpu_ms": float(np.percentile([c for _, c in live], 99)),
        **_percentiles([w for w, _ in baseline], "segment_membership_recompute_baseline"),
        "segment_membership_recompute_baseline_p99_cpu_ms": float(
            np.percentile([c for _, c in baseline], 99)),
        "segment_full_reevaluation_s": full,
        "segment_full_reevaluation_cpu_s": full_cpu,
        "segment_full_reevaluation_one_by_one_s": one,
        "segment_full_reevaluation_one_by_one_cpu_s": one_cpu,
        "segment_full_reevaluation_speedup": one / full,
        "segment_full_reevaluation_speedup_cpu": one_cpu / full_cpu,
        "segment_full_reevaluation_warm_s": warm,
        "segment_full_reevaluation_warm_cpu_s": warm_cpu,
        "segment_full_reevaluation_warm_speedup": one / warm,
        "segment_load_average_one_by_one": list(load_one),
        "segment_load_average_warm": list(load_warm),
        "segment_customers": float(len(customers)),
        "segment_events_in_store": float(len(events)),
        "segment_counts": counts,
        "segment_entries_on_ingest": float(sum(1 for _, entered in changes if entered)),
        "segment_load_average_full_reevaluation": list(load_full),
        "segment_load_average_ingest": list(load_ingest),
    }
    out["segment_membership_speedup_p99"] = (
        out["segment_membership_recompute_baseline_p99_ms"] / out["segment_membership_p99_ms"])
    return out


def cluster_benchmark() -> dict[str, Any]:
    """Clusters of the Online Retail customers at the end of the data, matched to a fit 90 days
    earlier (the refit a tenant would see), with their agreement."""
    from datetime import timedelta

    from personify.data.online_retail import read_online_retail
    from personify.insights.clusters import fit_clusters, person_features

    data = read_online_retail(DATA / "online_retail.csv.gz", anonymous="skip")
    events = list(data.events)
    end = max(e.timestamp for e in events) + timedelta(days=1)
    started, cpu = time.perf_counter(), time.process_time()
    before = fit_clusters(person_features(events, end - timedelta(days=90)))
    after = fit_clusters(person_features(events, end), previous=before)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    return {
        "cluster_k": after["k"], "cluster_silhouette": after["silhouette"],
        "cluster_silhouette_by_k": after["silhouette_by_k"],
        "cluster_agreement_with_previous": after["agreement_with_previous"],
        "cluster_people": after["people"], "cluster_previous_k": before["k"],
        "cluster_fit_seconds": seconds, "cluster_fit_cpu_seconds": cpu_seconds,
        "cluster_descriptions": {c["id"]: f"{c['share']:.1%}: {c['description']['en']}"
                                 for c in after["clusters"]},
        "cluster_load_average": list(os.getloadavg()),
    }


def _previous() -> dict[str, Any]:
    path = RESULTS_DIR / "insights.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _text_figures() -> dict[str, Any]:
    """The issue's text keys, as measured by benchmarks/text_insights.py (results/text.json) and
    benchmarks/tags.py (results/tags.json)."""
    out: dict[str, Any] = {}
    for name in ("text", "tags"):
        path = RESULTS_DIR / f"{name}.json"
        if path.exists():
            measured = json.loads(path.read_text())["metrics"]
            out.update({k: measured[k] for k in TEXT_KEYS if k in measured})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200, help="bootstrap resamples")
    parser.add_argument("--no-segments", action="store_true", help="skip the segment phase")
    parser.add_argument("--no-clusters", action="store_true", help="skip the cluster phase")
    parser.add_argument("--no-predictions", action="store_true",
                        help="skip the prediction phase (its previous figures are kept)")
    args = parser.parse_args()
    previous = _previous()
    metrics: dict[str, Any] = dict(previous.get("metrics", {}))
    extra: dict[str, Any] = {k: v for k, v in previous.items()
                             if k not in ("name", "metrics", "hardware", "date", "command")}
    extra["load_average_before"] = os.getloadavg()
    if not args.no_predictions:
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
        metrics.update(summary(report))
        churn = report["churn"]
        metrics["churn_auc_bgnbd_no_purchase_baseline"] = churn["bgnbd_no_purchase"]["auc"]
        metrics["churn_brier_recency_baseline"] = churn["recency_rule"]["brier"]
        metrics["propensity_auc_recency_baseline"] = report["propensity"]["recency_rule"]["auc"]
        metrics["propensity_auc_bgnbd_no_purchase_baseline"] = (
            report["propensity"]["bgnbd_no_purchase"]["auc"])
        metrics["clv_top_decile_capture"] = report["clv"]["top_decile_capture"]
        extra.update(report=report, lines=len(log), load_seconds=round(loaded, 1),
                     evaluation_seconds=round(seconds, 1), bootstrap_rounds=args.rounds)
    if not args.no_segments:
        metrics.update(segment_benchmark())
        extra["segments"] = SEGMENTS
    if not args.no_clusters:
        metrics.update(cluster_benchmark())
    metrics.update(_text_figures())
    extra["not_measured"] = [k for k in TEXT_KEYS if metrics.get(k) is None]
    extra["text_figures_from"] = "results/text.json, results/tags.json"
    extra["load_average_after"] = os.getloadavg()
    phases = [p for p, skipped in (("predictions", args.no_predictions),
                                   ("segments", args.no_segments),
                                   ("clusters", args.no_clusters)) if not skipped]
    extra["runs"] = [*extra.get("runs", []), {
        "command": "python " + " ".join(sys.argv), "phases": [*phases, "text figures copied"],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}][-10:]
    path = write_results("insights", metrics, **extra)
    for key, value in metrics.items():
        print(f"{key:48s} {value}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
