"""Serving benchmark at Gowalla scale (30k users, 41k items, 0.8M events): freshness, latency at
500 requests/s, the maximum rate at p99 <= 100 ms next to a bare FastAPI endpoint, a hot model
swap under load, and the server's memory. The load generator runs as a separate process.

Run: python benchmarks/serving.py [--quick]
Writes benchmarks/results/serving.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_results
from personify.domain.events import Event
from personify.domain.items import Item
from personify.jobs.training import TrainingConfig, train_tenant
from personify.runtime.engine import warm_up
from personify.storage.model_files import FileModelStore
from personify.storage.online import open_online_state
from personify.storage.registry import open_stores

HERE = Path(__file__).resolve().parent
DATASET = Path(os.environ.get("PERSONIFY_DATASETS_DIR", HERE.parent.parent / "shared" / "datasets"))
KEY = "bench-admin-key-0123456789abcdef"
BARE_APP = """
from fastapi import FastAPI
app = FastAPI()
@app.get("/ping")
def ping() -> dict:
    return {"ok": True}
"""


RATES = (25, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500)
HIGH_RATES = (600, 700, 800, 1000, 1200, 1500, 2000)
"""``--beyond-500``: where one worker stops holding p99 <= 100 ms when it holds 500/s."""
BODIES = 2000
"""Distinct request bodies (one user each); one pass through them warms the caches."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_gowalla(limit_users: int | None) -> dict[int, list[int]]:
    users: dict[int, list[int]] = {}
    with open(DATASET / "gowalla_lightgcn" / "train.txt", encoding="utf-8") as fh:
        for line in fh:
            parts = [int(x) for x in line.split()]
            if len(parts) > 1:
                users[parts[0]] = parts[1:]
            if limit_users and len(users) >= limit_users:
                break
    return users


def populate(db_url: str, users: dict[int, list[int]]) -> int:
    stores = open_stores(db_url)
    n_items = 1 + max(i for items in users.values() for i in items)
    now = datetime.now(UTC)
    stores.catalog.upsert(
        "default",
        [
            Item(
                item_id=f"p{i}",
                title=f"Place {i}",
                categories=[f"area-{i % 50}"],
                created_at=now - timedelta(days=400 - (i % 365)),
            )
            for i in range(n_items)
        ],
    )
    batch: list[Event] = []
    total = 0
    for u, items in users.items():
        for k, i in enumerate(items):
            ts = now - timedelta(days=20) + timedelta(seconds=(k * 600 + u % 600))
            batch.append(
                Event(
                    event_id=f"g{u}-{k}",
                    type="view",
                    user_id=f"u{u}",
                    item_id=f"p{i}",
                    timestamp=ts,
                )
            )
            if len(batch) >= 10_000:
                total += len(stores.events.append("default", batch).stored)
                batch = []
    if batch:
        total += len(stores.events.append("default", batch).stored)
    stores.close()
    return total


def start_server(port: int, env: dict[str, str], workers: int = 1) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "personify.app:app_from_environment",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        *(["--workers", str(workers)] if workers > 1 else []),
    ]
    proc = subprocess.Popen(cmd, env={**os.environ, **env})
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"server on {port} did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextmanager
def bare_server(work: Path) -> Iterator[int]:
    """A one-route FastAPI app (``GET /ping``) under uvicorn, the same way the service runs, until
    the block ends: yields its port once it answers. What this machine, at this load, gives any
    Python web server, measured in the same run as the service."""
    folder = work / "bare"
    folder.mkdir(parents=True, exist_ok=True)  # a --work rerun finds it from the run before
    (folder / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=folder,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield port
    finally:
        stop(proc)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load_command(
    port: int,
    rate: float,
    seconds: float,
    bodies: Path | None,
    *,
    closed: bool = False,
    method: str = "POST",
    path: str = "/v1/recommendations",
    connections: int = 64,
) -> list[str]:
    """The load generator's command line (``_load.py``; its last output line is a JSON
    summary)."""
    cmd = [
        sys.executable,
        str(HERE / "_load.py"),
        "--port",
        str(port),
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--key",
        KEY,
        "--method",
        method,
        "--path",
        path,
        "--connections",
        str(connections),
    ]
    if bodies is not None:
        cmd += ["--body-file", str(bodies)]
    if closed:
        cmd.append("--closed-loop")
    return cmd


def load(
    port: int, rate: float, seconds: float, bodies: Path | None, **options: Any
) -> dict[str, Any]:
    """One load run to its end; ``options`` as :func:`load_command`'s."""
    cmd = load_command(port, rate, seconds, bodies, **options)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def background_load(port: int, rate: int, seconds: int, bodies: Path) -> subprocess.Popen[str]:
    """The load generator started in the background (a hot swap happens while it runs)."""
    return subprocess.Popen(
        load_command(port, rate, seconds, bodies), stdout=subprocess.PIPE, text=True
    )


def freshness(
    write_port: int, read_port: int, users: list[str], items: list[str], trials: int
) -> tuple[float, float, int]:
    """ms from the ingest acknowledgement to a recommendation that reflects the click (the item
    excluded); returns p50, p99 and how many trials were not reflected."""
    headers = {"Authorization": f"Bearer {KEY}"}
    wc = httpx.Client(base_url=f"http://127.0.0.1:{write_port}", headers=headers)
    rc = httpx.Client(base_url=f"http://127.0.0.1:{read_port}", headers=headers)
    samples, misses = [], 0
    for t in range(trials):
        user, item = random.choice(users), random.choice(items)
        event = {
            "event_id": f"fresh-{uuid.uuid4().hex}",
            "type": "click",
            "user_id": user,
            "item_id": item,
            "timestamp": datetime.now(UTC).isoformat(),
        }
        r = wc.post("/v1/events", json=event)
        r.raise_for_status()
        acked = time.perf_counter()
        resp = rc.post(
            "/v1/recommendations",
            json={"user_id": user, "n": 20, "explain": True, "log_impression": False},
        ).json()
        done = time.perf_counter()
        ids = [i["item_id"] for i in resp["items"]]
        reasons = {r["item_id"] for i in resp["items"] for r in i["reasons"] if "item_id" in r}
        if item in ids or item not in reasons:
            misses += 1
        samples.append((done - acked) * 1000)
        if t % 50 == 0:
            print(f"  freshness trial {t}: {samples[-1]:.1f} ms", flush=True)
    samples.sort()
    return (
        samples[len(samples) // 2],
        samples[min(len(samples) - 1, int(0.99 * len(samples)))],
        misses,
    )


def wait_warm(port: int, timeout: float = 900) -> None:
    """Until ``/ready`` reports the warm-up (model, catalogue, replayed history) done: a load
    measured while the replay still runs measures the replay."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        checks = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=30).json().get("checks", {})
        if checks.get("online_state") == "ok" and checks.get("warm_up") == "done":
            return
        time.sleep(2)
    raise RuntimeError("the online state did not warm up")


def ladder(port: int, bodies: Path, secs: float, rates: tuple[int, ...]) -> tuple[int, list[Any]]:
    """Open-loop rates in turn until p99 exceeds 100 ms (or errors / shortfall); returns the
    highest rate that held and every step."""
    best, steps = 0, []
    for rate in rates:
        got = load(port, rate, secs, bodies)
        steps.append({"rate": rate, **got})
        print("ladder", rate, got["p99_ms"], got["errors"], got["dropped"], flush=True)
        if got["p99_ms"] <= 100 and got["errors"] == 0 and got["achieved_rps"] >= rate * 0.95:
            best = rate
        else:
            break
    return best, steps


def write_bodies(path: Path, users: list[str], n: int = BODIES) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(n):
            fh.write(
                json.dumps({"body": {"user_id": random.choice(users), "n": 20, "explain": True}})
                + "\n"
            )
    return path


def server_env(work: Path) -> dict[str, str]:
    """The server's settings on ``work``'s database and models; an operator in an opt-out
    regime (the Gowalla users have no consent records)."""
    return {
        "PERSONIFY_CONSENT_DEFAULTS": json.dumps(
            {"personalization": "opt-out", "profiling": "opt-out"}
        ),
        "PERSONIFY_DATABASE_URL": f"sqlite:///{work / 'bench.db'}",
        "PERSONIFY_MODEL_DIR": str(work / "models"),
        "PERSONIFY_ADMIN_KEY": KEY,
    }


def beyond_500(work: Path) -> None:
    """One worker on the full run's database and promoted model, warmed the same way, asked
    ever higher rates above 500/s; the steps are added to ``results/serving.json``."""
    results_path = HERE / "results" / "serving.json"
    saved = json.loads(results_path.read_text())
    port = free_port()
    server = start_server(port, server_env(work))
    bodies = work / "bodies.jsonl"
    try:
        wait_warm(port)
        load(port, 100, BODIES / 100, bodies)
        start = os.getloadavg()
        best, steps = ladder(port, bodies, 10, HIGH_RATES)
    finally:
        stop(server)
    details = saved.setdefault("details", {})
    details["rate_ladder_beyond_500_one_worker"] = {
        "steps": steps,
        "best": best,
        "load_average_start": start,
        "load_average_end": os.getloadavg(),
        "command": "python " + " ".join(sys.argv),
    }
    if best > details.get("max_rps_at_p99_100ms_one_worker", 0):
        details["max_rps_at_p99_100ms_one_worker"] = best
        metrics = saved["metrics"]
        metrics["max_rps_at_p99_100ms"] = max(best, metrics["max_rps_at_p99_100ms"])
        details["max_rps_at_p99_100ms"] = metrics["max_rps_at_p99_100ms"]
        details["personify_over_bare_ratio"] = metrics["max_rps_at_p99_100ms"] / max(
            1.0, metrics["bare_fastapi_rps_same_run"]
        )
    results_path.write_text(json.dumps(saved, indent=2, default=str) + "\n")
    print("beyond 500:", best, flush=True)


def bare_rps(work: Path) -> float:
    """Requests/s a bare FastAPI endpoint answers on this machine, same load generator."""
    with bare_server(work) as bare_port:
        got = load(bare_port, 0, 8, None, closed=True, method="GET", path="/ping", connections=32)
    return float(got["achieved_rps"])


def best_blend(work: Path, quick: bool) -> None:
    """The configuration the issue asks about: source weights chosen for the best validation hit
    rate with the factors source on. Two versions are trained once (reused by ``--work`` reruns);
    the hot swap promotes whichever is not served."""
    random.seed(0)
    work.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{work / 'bench.db'}"
    users_data = load_gowalla(3000 if quick else None)
    if not (work / "bench.db").exists():
        print("loaded", populate(db_url, users_data), "events", flush=True)
    stores = open_stores(db_url)
    models = FileModelStore(work / "models-best")
    config = TrainingConfig(blend_selection="best")
    if config.factors is None:
        raise SystemExit("the factors source needs the training extra (implicit)")
    versions = [m for m in models.list("default")]
    while len(versions) < 2:
        t0 = time.perf_counter()
        m = train_tenant(
            stores.events,
            models,
            "default",
            config,
            catalog=stores.catalog,
            users=stores.users,
            promote=not versions,
        )
        print(f"trained {m.version} in {time.perf_counter() - t0:.1f}s: {m.params}", flush=True)
        versions = [m for m in models.list("default")]
    served = models.promoted_version("default")
    other = next(m.version for m in versions if m.version != served)
    env = server_env(work) | {"PERSONIFY_MODEL_DIR": str(work / "models-best")}
    port = free_port()
    server = start_server(port, env)
    user_ids = [f"u{u}" for u in users_data]
    bodies = write_bodies(work / "bodies.jsonl", user_ids)
    secs = 6 if quick else 10
    results: dict[str, Any] = {"load_average_start": os.getloadavg(), "served": served}
    try:
        wait_warm(port)
        load(port, 100, BODIES / 100, bodies)
        sources = httpx.post(
            f"http://127.0.0.1:{port}/v1/recommendations",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"user_id": user_ids[0], "n": 5, "explain": True},
            timeout=30,
        ).json()
        results["model_version"] = sources.get("model_version")
        best, steps = ladder(port, bodies, secs, RATES + HIGH_RATES)
        results["rate_ladder"] = steps
        at500 = load(port, 500, secs, bodies)
        results["latency_at_500rps"] = at500
        print("500 rps", at500, flush=True)
        swap_rate = max(10, best // 2)
        steady = load(port, swap_rate, 20 if quick else 30, bodies)
        loader = background_load(port, swap_rate, 20 if quick else 60, bodies)
        time.sleep(8 if quick else 25)
        models.promote("default", other)
        out, _ = loader.communicate()
        hot = json.loads(out.strip().splitlines()[-1])
        after = httpx.post(
            f"http://127.0.0.1:{port}/v1/recommendations",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"user_id": user_ids[0], "n": 5},
            timeout=30,
        ).json()["model_version"]
        results["hot_swap"] = {
            **hot,
            "rate": swap_rate,
            "steady": steady,
            "from": served,
            "to": other,
            "served_version_after": after,
        }
        print("hot swap", results["hot_swap"], flush=True)
    finally:
        stop(server)
    bare = bare_rps(work)
    results["bare_fastapi_rps_same_run"] = bare
    results["max_rps_at_p99_100ms_one_worker"] = best
    results["load_average_end"] = os.getloadavg()
    results["command"] = "python " + " ".join(sys.argv)
    metrics_new = {
        "max_rps_ratio_to_bare_best_blend": best / max(1.0, bare),
        "max_rps_at_p99_100ms_best_blend": best,
        # None when 500/s was not held (requests dropped: p99 is unbounded)
        "latency_p99_ms_at_500rps_best_blend": (
            at500["p99_ms"] if math.isfinite(at500["p99_ms"]) else None
        ),
        "achieved_rps_at_500_best_blend": at500["achieved_rps"],
        "hot_swap_p99_ratio": hot["p99_ms"] / max(1e-9, steady["p99_ms"]),
        "hot_swap_errors_best_blend": hot["errors"],
        "bare_fastapi_rps_best_blend_run": bare,
    }
    results_path = HERE / "results" / ("serving.json" if not quick else "serving_quick.json")
    saved = json.loads(results_path.read_text()) if results_path.exists() else {"metrics": {}}
    saved["metrics"].update(metrics_new)
    saved.setdefault("details", {})["best_blend"] = results
    results_path.write_text(json.dumps(saved, indent=2, default=str) + "\n")
    print(json.dumps(metrics_new, indent=2), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3,000 users, short phases")
    parser.add_argument("--work", type=Path, help="reuse this folder's loaded database and model")
    parser.add_argument(
        "--beyond-500",
        action="store_true",
        help="with --work after a full run: one worker's ladder above 500/s, "
        "merged into the results file",
    )
    parser.add_argument(
        "--best-blend",
        action="store_true",
        help="the blend with the best validation hit rate (the factors source "
        "on): one worker's ladder, 500/s and a hot swap next to bare "
        "FastAPI in the same run, merged into the results file",
    )
    args = parser.parse_args()
    if args.beyond_500:
        beyond_500(args.work)
        return
    if args.best_blend:
        best_blend(args.work or Path(tempfile.mkdtemp(prefix="personify-serving-")), args.quick)
        return
    random.seed(0)
    work = args.work or Path(tempfile.mkdtemp(prefix="personify-serving-"))
    work.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{work / 'bench.db'}"
    users_data = load_gowalla(3000 if args.quick else None)
    t0 = time.perf_counter()
    reuse = (work / "bench.db").exists()
    n_events = populate(db_url, users_data) if not reuse else -1
    print(f"loaded {n_events} events in {time.perf_counter() - t0:.1f}s", flush=True)
    stores = open_stores(db_url)
    models = FileModelStore(work / "models")
    if reuse and models.promoted_version("default"):
        manifest = next(m for m in models.list("default") if m.promoted)
        fit_s = manifest.fit_seconds
    else:
        t0 = time.perf_counter()
        manifest = train_tenant(
            stores.events,
            models,
            "default",
            TrainingConfig(),
            catalog=stores.catalog,
            users=stores.users,
        )
        fit_s = time.perf_counter() - t0
    print(f"trained {manifest.version} in {fit_s:.1f}s: {manifest.metrics}", flush=True)
    env = server_env(work)
    port = free_port()
    server = start_server(port, env)
    user_ids = [f"u{u}" for u in users_data]
    item_ids = [f"p{i}" for i in range(1 + max(i for v in users_data.values() for i in v))]
    bodies = write_bodies(work / "bodies.jsonl", user_ids)
    results: dict[str, Any] = {
        "events": n_events,
        "fit_seconds": round(fit_s, 1),
        "model": manifest.params,
        "training_metrics": manifest.metrics,
        "load_average_start": os.getloadavg(),
    }
    try:
        # the in-process online state replays the stored history in the background after a
        # start; /ready says when it is done
        t0 = time.perf_counter()
        wait_warm(port)
        results["warm_up_seconds"] = round(time.perf_counter() - t0, 1)
        # every request body once: the per-person caches hold what returning visitors need
        load(port, 100, BODIES / 100, bodies)
        p50, p99, misses = freshness(port, port, user_ids, item_ids, 100 if args.quick else 300)
        results |= {
            "freshness_p50_ms_inprocess": p50,
            "freshness_p99_ms_inprocess": p99,
            "freshness_misses_inprocess": misses,
        }
        print("freshness", p50, p99, misses, flush=True)
        secs = 6 if args.quick else 10
        best, steps = ladder(port, bodies, secs, RATES)
        results["rate_ladder"] = steps
        results["max_rps_at_p99_100ms_one_worker"] = best
        results["max_rps_at_p99_100ms"] = best
        steady = load(port, 500, secs, bodies)
        results["latency_at_500rps"] = steady
        results["latency_p99_ms_at_500rps"] = steady["p99_ms"]
        print("500 rps", steady, flush=True)
        # hot swap: a new version trained beforehand is promoted in the middle of a 60 s run;
        # the server loads it off the request path and swaps it in
        swap_rate = max(10, best // 2)
        # a retrain of the same configuration, as the scheduler would run it
        swapped = train_tenant(
            stores.events,
            models,
            "default",
            TrainingConfig(),
            catalog=stores.catalog,
            users=stores.users,
            promote=False,
        )
        loader = background_load(port, swap_rate, 20 if args.quick else 60, bodies)
        time.sleep(8 if args.quick else 25)
        models.promote("default", swapped.version)
        out, _ = loader.communicate()
        hot = json.loads(out.strip().splitlines()[-1])
        served = httpx.post(
            f"http://127.0.0.1:{port}/v1/recommendations",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"user_id": user_ids[0], "n": 5},
            timeout=30,
        ).json()["model_version"]
        steady_at_rate = next((x for x in steps if x["rate"] >= swap_rate), steady)
        results["hot_swap"] = {
            **hot,
            "rate": swap_rate,
            "new_version": swapped.version,
            "served_version_after": served,
        }
        results["hot_swap_errors"] = hot["errors"]
        results["hot_swap_p99_ratio"] = hot["p99_ms"] / max(1e-9, steady_at_rate["p99_ms"])
        results["serving_rss_mb"] = round(rss_mb(server.pid), 1)
        print("hot swap", results["hot_swap"], flush=True)
    finally:
        stop(server)
    # bare FastAPI, same machine, same load generator
    with bare_server(work) as bare_port:
        got = load(bare_port, 0, 8, None, closed=True, method="GET", path="/ping", connections=32)
        results["bare_fastapi_rps_same_run"] = got["achieved_rps"]
        got_p = load(
            port=bare_port,
            rate=0,
            seconds=1,
            bodies=None,
            closed=True,
            method="GET",
            path="/ping",
            connections=1,
        )
        del got_p
    results["personify_over_bare_ratio"] = results["max_rps_at_p99_100ms"] / max(
        1.0, results["bare_fastapi_rps_same_run"]
    )
    # Redis: two server processes sharing the online state
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    renv = {
        **env,
        "PERSONIFY_REDIS_URL": "redis://127.0.0.1:6379/0",
        "PERSONIFY_REDIS_PREFIX": prefix,
    }
    a_port, b_port = free_port(), free_port()
    a = start_server(a_port, renv)
    b = start_server(b_port, renv)
    try:
        fresh_users = [f"r{k}" for k in range(200)]
        p50, p99, misses = freshness(
            a_port, b_port, fresh_users, item_ids, 100 if args.quick else 300
        )
        results |= {
            "freshness_p50_ms_redis": p50,
            "freshness_p99_ms_redis": p99,
            "freshness_misses_redis": misses,
        }
        print("redis freshness", p50, p99, misses, flush=True)
        stop(a)
        stop(b)
        # several workers on the shared state: replay the history into Redis once (what a
        # Redis-backed deployment keeps across restarts), then the same ladder on 2 workers
        t0 = time.perf_counter()
        shared = open_online_state(renv["PERSONIFY_REDIS_URL"], prefix)
        replayed = warm_up(shared, stores, "default")
        shared.close()
        results["redis_replay"] = {
            "events": replayed,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print("replayed into Redis", results["redis_replay"], flush=True)
        w_port = free_port()
        workers = start_server(w_port, renv, workers=2)
        try:
            load(w_port, 100, BODIES / 100, bodies)
            best2, steps2 = ladder(w_port, bodies, secs, RATES)
            results["rate_ladder_two_workers_redis"] = steps2
            results["max_rps_at_p99_100ms_two_workers_redis"] = best2
            at500 = load(w_port, 500, secs, bodies)
            results["latency_at_500rps_two_workers_redis"] = at500
            print("2 workers + Redis", best2, at500, flush=True)
        finally:
            stop(workers)
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                stop(proc)
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    results["max_rps_at_p99_100ms"] = max(
        results.get("max_rps_at_p99_100ms_one_worker", 0),
        results.get("max_rps_at_p99_100ms_two_workers_redis", 0),
    )
    results["latency_p99_ms_at_500rps"] = min(
        results["latency_at_500rps"]["p99_ms"],
        results.get("latency_at_500rps_two_workers_redis", {}).get("p99_ms", float("inf")),
    )
    results["personify_over_bare_ratio"] = results["max_rps_at_p99_100ms"] / max(
        1.0, results["bare_fastapi_rps_same_run"]
    )
    results["load_average_end"] = os.getloadavg()
    metrics = {
        k: results.get(k)
        for k in (
            "freshness_p99_ms_inprocess",
            "freshness_p99_ms_redis",
            "latency_p99_ms_at_500rps",
            "max_rps_at_p99_100ms",
            "bare_fastapi_rps_same_run",
            "hot_swap_errors",
            "serving_rss_mb",
        )
    }
    path = write_results("serving" if not args.quick else "serving_quick", metrics, details=results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
