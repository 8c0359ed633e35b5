"""CPU time per 1,000 realistic events, in process, for one or more code trees in one run.

    nice -n 10 python benchmarks/ingest_realistic_cpu.py [--tree DIR ...] [--batches 100]
                     [--backends sqlite,postgres] [--profile DIR]

The deployment of ``ingest.py --realistic`` (profiling and personalization opt-out so every
event feeds the online state, messaging on with every built-in journey enabled, 800 people who
signed up with a profile, 2,000 known people of whom 400 granted e-mail marketing, 5,000 items)
receives the same realistic batches (``ingest.realistic_body``: mixed types, browser-sized and
server-sized batches, ~2 % bad records, repeats) through the batch route's ingestion
(``ingest_raw``: validation, erasure check, the durable append and every listener), without
HTTP. What is measured is the process's CPU time (``time.process_time``, every thread) per
1,000 stored events: meaningful on a loaded machine, where events/s are not. Each ``--tree``
(a checkout of Personify, e.g. ``git worktree add /tmp/before <commit>``) runs in its own
process one after the other, so a change is compared with its baseline in the same run; the
default is this checkout alone. ``--profile DIR`` dumps a cProfile per tree and backend.
Writes ``benchmarks/results/ingest_realistic_cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def measure(tree: Path, backend: str, batches: int, profile: str | None) -> dict[str, Any]:
    """Run in the process of one tree: build the deployment, ingest, return the figures."""
    sys.path.insert(0, str(tree))
    os.environ.update({
        "PERSONIFY_DEMO": "0", "PERSONIFY_MESSAGING_ENABLED": "1",
        "PERSONIFY_TRACKING_SECRET": "benchmark-tracking-secret-0123456789",
        "PERSONIFY_CONSENT_DEFAULTS": json.dumps(
            {"profiling": "opt-out", "personalization": "opt-out"}),
    })
    import orjson
    from fastapi.testclient import TestClient

    from benchmarks.ingest import drop_postgres_database, postgres_database, realistic_body
    from personify.api import create_app
    from personify.api.routers.events import ingest_raw
    from personify.domain.keys import Scope
    from personify.messaging.journey_definitions import builtin_journeys
    from personify.settings import load_settings
    from personify.storage.registry import open_stores

    tmp = tempfile.mkdtemp()
    database = None
    url = f"sqlite:///{tmp}/realistic.db"
    if backend == "postgres":
        url, database = postgres_database()
    with open_stores(url) as stores:
        _, admin = stores.keys.create("default", "admin", [Scope.ADMIN])
    app = create_app(load_settings(database_url=url, model_dir=f"{tmp}/models"))
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"}

    def post(path: str, body: Any) -> None:
        answer = client.post(path, content=orjson.dumps(body), headers=headers)
        assert answer.status_code in (200, 201), answer.text[:300]

    for name in sorted(builtin_journeys()):
        answer = client.post(f"/v1/messaging/journeys/{name}/enable", headers=headers)
        assert answer.status_code == 200, answer.text[:300]
    post("/v1/users:bulk", [{"user_id": f"p{w}-{k}", "profile": {
        "email": f"p{w}-{k}@example.test", "time_zone": "Europe/Berlin", "language": "de"}}
        for w in range(4) for k in range(200)])
    post("/v1/users:bulk", [{"user_id": f"u{k}", "profile": {"email": f"u{k}@example.test"}}
                            for k in range(0, 20_000, 10)])
    for k in range(0, 20_000, 50):
        post(f"/v1/users/u{k}/consents/email_marketing:grant",
             {"source": "signup", "text_version": "2026-12"})
    for start in range(0, 5_000, 1_000):
        post("/v1/items:bulk", [{"item_id": f"i{k}", "title": f"Thing {k}",
                                 "categories": [f"c{k % 20}"], "price": 10 + k % 50}
                                for k in range(start, start + 1_000)])
    timestamp = (datetime.now(UTC) - timedelta(minutes=1)).isoformat().encode()
    bodies = []
    for seq in range(batches):  # as load_realistic sends them
        size = 500 + (seq * 379) % 1_501 if seq % 4 == 3 else 5 + (seq * 37) % 96
        bodies.append(realistic_body(seq % 4, seq, size, timestamp, 200)[0])
    ingestor = app.state.runtime.ingestor
    ingest_raw(ingestor, "default", orjson.loads(realistic_body(9, 0, 50, timestamp, 200)[0]))
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    stored = 0
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    for body in bodies:
        stored += len(ingest_raw(ingestor, "default", orjson.loads(body)).stored)
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    app.state.runtime.stores.close()
    if database:
        drop_postgres_database(database)
    return {"events": stored, "cpu_s_per_1000_events": round(1000 * cpu / stored, 4),
            "wall_s_per_1000_events": round(1000 * wall / stored, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", action="append", default=None,
                        help="a Personify checkout (repeatable; default: this one)")
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--profile", default=None, help="directory for cProfile dumps")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        tree, backend = Path(args.child[0]), args.child[1]
        profile = (str(Path(args.profile) / f"{tree.name}-{backend}.prof")
                   if args.profile else None)
        sys.stdout.write(json.dumps(measure(tree, backend, args.batches, profile)))
        return
    trees = [Path(t).resolve() for t in (args.tree or [str(ROOT)])]
    runs: dict[str, dict[str, Any]] = {}
    for backend in args.backends.split(","):
        for tree in trees:
            command = [sys.executable, __file__, "--child", str(tree), backend,
                       "--batches", str(args.batches)]
            if args.profile:
                command += ["--profile", args.profile]
            done = subprocess.run(command, check=True, capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(tree / "src")})
            runs[f"{backend}:{tree}"] = json.loads(done.stdout.strip().splitlines()[-1])
            print(backend, tree, runs[f"{backend}:{tree}"], flush=True)
    metrics: dict[str, Any] = {"batches": args.batches, "load_average_1m": os.getloadavg()[0]}
    for backend in args.backends.split(","):
        first = runs[f"{backend}:{trees[0]}"]["cpu_s_per_1000_events"]
        last = runs[f"{backend}:{trees[-1]}"]["cpu_s_per_1000_events"]
        metrics[f"cpu_s_per_1000_events_{backend}"] = last
        if len(trees) > 1:
            metrics[f"cpu_s_per_1000_events_{backend}_first_tree"] = first
            metrics[f"cpu_ratio_last_to_first_tree_{backend}"] = round(last / first, 3)
    metrics["runs"] = runs
    sys.path.insert(0, str(ROOT))
    from benchmarks._report import write_results

    print(f"wrote {write_results('ingest_realistic_cpu', metrics)}")


if __name__ == "__main__":
    main()
