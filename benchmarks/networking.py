"""People recommendations on the Quantum Computing Stack Exchange network (temporal split) and
the reciprocity simulator.

Run: python benchmarks/networking.py [--bootstrap 2000] [--rate 200 --seconds 20 | --no-http]

The HTTP phase loads the network into a SQLite database as ``personify demo --dataset network``
does, trains the people model, starts one uvicorn worker and sends ``GET /v1/users/{id}/people``
for every person at a fixed rate (open loop, latency from the scheduled time); ``GET /health`` at
the same rate in the same run is the baseline, and so is a one-route FastAPI app under uvicorn at
the same rate (the floor this machine gives any Python server at its current load).

Contains data from Quantum Computing Stack Exchange (https://quantumcomputing.stackexchange.com),
CC BY-SA 3.0/4.0 (see the data set's README).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchmarks._report import write_results  # noqa: E402
from benchmarks.serving import (  # noqa: E402
    KEY,
    bare_server,
    free_port,
    load,
    start_server,
    stop,
)
from personify.data.stackexchange import (  # noqa: E402
    ATTRIBUTION,
    DATASET_NAME,
    SUGGESTED_CUT,
    load_stackexchange,
)
from personify.ingestion.events import EventIngestor  # noqa: E402
from personify.jobs.network_demo import load_network_demo  # noqa: E402
from personify.jobs.networking import train_networking  # noqa: E402
from personify.networking import stackexchange as se  # noqa: E402
from personify.networking.evaluation import (  # noqa: E402
    Baselines,
    bootstrap_interval,
    bootstrap_ratio,
    evaluate,
    recommender_ranker,
    temporal_task,
)
from personify.networking.recommender import (  # noqa: E402
    PeopleRecommender,
    serving_recommender,
)
from personify.networking.simulation import NetworkSimConfig, simulate_network  # noqa: E402
from personify.networking.state import build_state  # noqa: E402
from personify.networking.training import fit_directional  # noqa: E402
from personify.storage.registry import open_stores  # noqa: E402

DATASETS = Path(os.environ.get("PERSONIFY_DATASETS_DIR", ROOT.parent / "shared" / "datasets"))
K = 20


def _r(x: float) -> float:
    return round(float(x), 4)


def http_phase(dataset: str, rate: float, seconds: float) -> dict[str, Any]:
    """p50 / p99 of the people endpoint at ``rate`` with the whole network loaded."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'network.db'}"
        stores = open_stores(url)
        try:
            counts = load_network_demo(stores, "default", EventIngestor(stores.events), dataset)
            train_networking(stores, work / "models", "default")
            people = [u.user_id for u in stores.users.list("default", limit=10_000)]
        finally:
            stores.close()
        env = {
            "PERSONIFY_CONSENT_DEFAULTS": json.dumps(
                {"personalization": "opt-out", "profiling": "opt-out"}),
            "PERSONIFY_DATABASE_URL": url,
            "PERSONIFY_MODEL_DIR": str(work / "models"),
            "PERSONIFY_ADMIN_KEY": KEY,
        }
        rng = random.Random(0)
        paths = [f"/v1/users/{p}/people?n=10" for p in people]
        rng.shuffle(paths)
        bodies = work / "people.jsonl"
        bodies.write_text("".join(json.dumps({"path": p}) + "\n" for p in paths))
        port = free_port()
        proc = start_server(port, env)
        try:
            started = time.perf_counter()  # every person once, one at a time: loads the network
            with httpx.Client(base_url=f"http://127.0.0.1:{port}",
                              headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as c:
                statuses = [c.get(p).status_code for p in paths]
            warm = {"requests": len(paths), "ok": statuses.count(200),
                    "seconds": round(time.perf_counter() - started, 2)}
            loads = {"before_health": _load_average()}
            health = load(port, rate, seconds, None, method="GET", path="/health")
            loads["before_people"] = _load_average()
            served = load(port, rate, seconds, bodies, method="GET")
            loads["after_people"] = _load_average()
            time.sleep(5)  # let a backlog drain before the lower rate
            half = load(port, rate / 2, seconds, bodies, method="GET")
        finally:
            stop(proc)
        bare = bare_phase(work, rate, seconds)
        loads["after_bare"] = _load_average()
    return {"people": counts.people, "events": counts.events, "warm_up": warm,
            "health": health, "people_endpoint": served, "people_endpoint_half_rate": half,
            "bare_fastapi": bare, "load_average": loads}


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def bare_phase(work: Path, rate: float, seconds: float) -> dict[str, Any]:
    """A one-route FastAPI app under uvicorn at the same rate: what this machine, at this
    load, gives any Python web server (the floor under every figure of this run)."""
    with bare_server(work) as port:
        return load(port, rate, seconds, None, method="GET", path="/ping")


HTTP_KEYS = (
    "people_p99_ms", "people_p50_ms", "people_errors", "people_rate_achieved",
    "health_p99_ms_same_rate", "people_p99_ms_at_half_rate", "people_p50_ms_at_half_rate",
    "people_p99_ratio_to_health", "bare_fastapi_p99_ms_same_rate",
    "people_p99_ratio_to_bare_fastapi", "load_average_during_people",
)
"""Metrics of the HTTP phase: a ``--no-http`` run keeps the previous run's (named by its date
and command in ``http_measured_by``)."""


def _previous_http() -> tuple[dict[str, Any], dict[str, Any]] | None:
    path = ROOT / "benchmarks" / "results" / "networking.json"
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    http = body.get("http")
    if not isinstance(http, dict):
        return None
    http = {**http}
    http.setdefault("date", body.get("date"))
    http.setdefault("command", body.get("command"))
    return body.get("metrics", {}), http


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(DATASETS / DATASET_NAME))
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP latency phase")
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.perf_counter()

    network = load_stackexchange(args.dataset)
    interactions = se.interactions(network)
    profiles = se.profiles(network)
    task = temporal_task(interactions, SUGGESTED_CUT, network.people)
    model = fit_directional(interactions, cut=SUGGESTED_CUT, profiles=profiles)
    state = build_state(task.train, profiles)
    rankers = Baselines(state).rankers()
    baseline_names = list(rankers)
    # the served recommender (the learned reciprocal combination), then the alternatives
    rankers["reciprocal_model"] = recommender_ranker(serving_recommender(state, model))
    for mode in ("one_sided", "product", "harmonic"):
        rankers[f"reciprocal_model_{mode}"] = recommender_ranker(
            PeopleRecommender(state, model, mode=mode))

    settings = {
        "warm": (task.warm, task.warm_universe),
        "cold": (task.cold, task.all_universe),
        "reciprocal": (task.reciprocal, task.all_universe),
        "reciprocal_warm": (task.reciprocal_warm, task.warm_universe),
    }
    per: dict[str, dict[str, Any]] = {}
    raw: dict[tuple[str, str], Any] = {}
    for name, ranker in rankers.items():
        per[name] = {}
        for setting, (queries, universe) in settings.items():
            res = evaluate(ranker, queries, universe, K)
            raw[(name, setting)] = res
            if setting.startswith("reciprocal"):
                per[name][f"hit_rate@{K}_{setting}"] = _r(res.hit.mean())
                per[name][f"hit_rate@{K}_{setting}_ci95"] = [
                    _r(v) for v in bootstrap_interval(res.hit, n=args.bootstrap, seed=args.seed)
                ]
            else:
                for metric, values in (("ndcg", res.ndcg), ("recall", res.recall)):
                    per[name][f"{metric}@{K}_{setting}"] = _r(values.mean())
                    per[name][f"{metric}@{K}_{setting}_ci95"] = [
                        _r(v) for v in bootstrap_interval(values, n=args.bootstrap, seed=args.seed)
                    ]

    best_warm = max(baseline_names, key=lambda n: per[n][f"ndcg@{K}_warm"])
    best_recip = max(baseline_names, key=lambda n: per[n][f"hit_rate@{K}_reciprocal"])
    ours = "reciprocal_model"
    ratio_ci = bootstrap_ratio(
        raw[(ours, "warm")].ndcg, raw[(best_warm, "warm")].ndcg, n=args.bootstrap, seed=args.seed
    )

    # latency of one recommendation (in process, 20 people) for every warm and cold query person
    rec = serving_recommender(state, model)
    times = []
    for q in sorted(set(task.warm) | set(task.cold)) * 3:
        t0 = time.perf_counter()
        rec.recommend(q, K)
        times.append((time.perf_counter() - t0) * 1000)
    lat = np.asarray(times)

    sim = simulate_network(NetworkSimConfig(seed=args.seed))
    http = None if args.no_http else http_phase(args.dataset, args.rate, args.seconds)
    served = http["people_endpoint"] if http else {}
    health = http["health"] if http else {}
    half = http["people_endpoint_half_rate"] if http else {}
    bare = http["bare_fastapi"] if http else {}

    ndcg_ours = per[ours][f"ndcg@{K}_warm"]
    ndcg_best = per[best_warm][f"ndcg@{K}_warm"]
    metrics: dict[str, Any] = {
        "people_ndcg@20_warm": ndcg_ours,
        "people_ndcg@20_best_baseline_warm": ndcg_best,
        "best_baseline_warm": best_warm,
        "people_ndcg@20_warm_ratio_to_best": _r(ndcg_ours / ndcg_best) if ndcg_best else None,
        "people_ndcg@20_warm_ratio_ci95": [_r(v) for v in ratio_ci],
        "people_recall@20_warm": per[ours][f"recall@{K}_warm"],
        "people_ndcg@20_cold": per[ours][f"ndcg@{K}_cold"],
        "people_ndcg@20_best_baseline_cold": max(per[n][f"ndcg@{K}_cold"] for n in baseline_names),
        "reciprocal_hit_rate": per[ours][f"hit_rate@{K}_reciprocal"],
        "reciprocal_hit_rate_best_baseline": per[best_recip][f"hit_rate@{K}_reciprocal"],
        "best_baseline_reciprocal": best_recip,
        "sim_accept_rate_reciprocal": sim["accept_rate_reciprocal"],
        "sim_accept_rate_reciprocal_ci95": sim["accept_rate_reciprocal_ci95"],
        "sim_accept_rate_one_sided": sim["accept_rate_one_sided"],
        "sim_accept_rate_one_sided_ci95": sim["accept_rate_one_sided_ci95"],
        "people_p99_ms": served.get("p99_ms"),
        "people_p50_ms": served.get("p50_ms"),
        "people_errors": served.get("errors"),
        "people_rate_achieved": served.get("achieved_rps"),
        "health_p99_ms_same_rate": health.get("p99_ms"),
        "people_p99_ms_at_half_rate": half.get("p99_ms"),
        "people_p50_ms_at_half_rate": half.get("p50_ms"),
        "people_p99_ratio_to_health": (
            _r(served["p99_ms"] / health["p99_ms"]) if served and health.get("p99_ms") else None),
        "bare_fastapi_p99_ms_same_rate": bare.get("p99_ms"),
        "people_p99_ratio_to_bare_fastapi": (
            _r(served["p99_ms"] / bare["p99_ms"]) if served and bare.get("p99_ms") else None),
        "load_average_during_people": http["load_average"]["after_people"] if http else None,
        "people_p99_ms_in_process": _r(np.percentile(lat, 99)),
        "people_p50_ms_in_process": _r(np.percentile(lat, 50)),
        "query_people": {s: len(q) for s, (q, _) in settings.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    if http is None:  # keep the latency figures (and their run) of the last HTTP phase
        previous = _previous_http()
        if previous is not None:
            old_metrics, http = previous
            for key in HTTP_KEYS:
                if key in old_metrics:
                    metrics[key] = old_metrics[key]
            metrics["http_measured_by"] = old_metrics.get("http_measured_by") or {
                "date": http.get("date"), "command": http.get("command")}
    path = write_results(
        "networking",
        metrics,
        methods=per,
        simulator=sim,
        model_weights=dict(zip(model.features, [_r(w) for w in model.weights], strict=True)),
        model_combination={"kind": "weighted_geometric_mean",
                           "forward_share": model.forward_share,
                           "validation": model.validation},
        split={
            "cut": SUGGESTED_CUT.isoformat(),
            "train_interactions": len(task.train),
            "universe_warm": len(task.warm_universe),
            "universe_all": len(task.all_universe),
        },
        attribution=ATTRIBUTION,
        http=http,
        load_average_before=[round(x, 2) for x in load_before],
        load_average_after=[round(x, 2) for x in os.getloadavg()],
    )
    for key, value in metrics.items():
        print(f"{key:42} {value}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
