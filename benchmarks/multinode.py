"""Multi-node benchmark: one vs two ``personify serve`` processes on one PostgreSQL + Redis +
model directory, on this machine, plus the fault figures of the multi-node topology.

Measures, with ``--clients`` closed-loop client threads for ``--seconds`` per phase:

* requests/s and p99 of ``POST /v1/recommendations`` against one server, then split across two;
* the servers' CPU per request (``process_cpu_seconds_total`` scraped from ``/metrics`` before and
  after each phase): on a 2-core machine two servers share the same two cores (and the client),
  so two servers cannot show real scaling here — the CPU cost per request is the figure to size
  from;
* ``multinode_lost_events``: acknowledged events missing from the database after server A is
  killed with SIGKILL mid-load while the client retries on B;
* ``multinode_duplicate_sends``: messages of a campaign delivered more than once by two
  ``personify worker messages`` processes (to a local webhook receiver);
* ``model_swap_seconds_across_servers``: from a promotion until both servers serve it.

Results go to ``benchmarks/results/scale.json`` (read-modify-write of its ``metrics`` object:
the Spark benchmark writes other keys to the same file).

Run: nice -n 10 python benchmarks/multinode.py [--seconds 15] [--clients 8]
(needs PostgreSQL and Redis: PERSONIFY_TEST_POSTGRES_URL, PERSONIFY_TEST_REDIS_URL)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import numpy as np
import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pydantic import SecretStr

from benchmarks._report import merge_results
from personify.testing.cluster import Cluster, Node

POSTGRES = os.environ.get("PERSONIFY_TEST_POSTGRES_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("PERSONIFY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ADMIN = "bench-multinode-admin-key-0123456789"
H = {"Authorization": f"Bearer {ADMIN}"}
USERS, ITEMS = 300, 400


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(orjson.loads(body)["message_id"])
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def _train(url: str, model_dir: Path) -> str:
    from personify.jobs.training import TrainingConfig, train_tenant
    from personify.runtime.container import build_runtime
    from personify.settings import Settings

    runtime = build_runtime(Settings(database_url=url, model_dir=str(model_dir),
                                     admin_key=SecretStr(ADMIN)))
    try:
        s = runtime.stores
        return train_tenant(s.events, runtime.engine.models, "default",
                            TrainingConfig(learn_blend=False), catalog=s.catalog,
                            users=s.users).version
    finally:
        runtime.close()


def _seed(url: str, model_dir: Path) -> None:
    from personify.domain.items import Item
    from personify.domain.users import User
    from personify.runtime.container import build_runtime
    from personify.settings import Settings

    rng = np.random.default_rng(7)
    runtime = build_runtime(Settings(database_url=url, model_dir=str(model_dir),
                                     admin_key=SecretStr(ADMIN)))
    try:
        s = runtime.stores
        s.catalog.upsert("default", [Item(item_id=f"i{k}", title=f"Item {k}")
                                     for k in range(ITEMS)])
        s.users.upsert("default", [User(user_id=f"u{u}") for u in range(USERS)])
        now = datetime.now(UTC)
        events = [
            {"event_id": f"seed-{u}-{j}", "type": "purchase", "user_id": f"u{u}",
             "item_id": f"i{(u % 20) * 20 + int(rng.integers(20))}",
             "timestamp": (now - timedelta(days=2, minutes=j)).isoformat()}
            for u in range(USERS) for j in range(10)
        ]
        runtime.ingestor.ingest("default", events)
    finally:
        runtime.close()
    _train(url, model_dir)


def _cpu_seconds(http: httpx.Client, node: Node) -> float:
    text = http.get(f"{node.url}/metrics").text
    for line in text.splitlines():
        if line.startswith("process_cpu_seconds_total "):
            return float(line.split()[1])
    return float("nan")


def _load(http_nodes: list[Node], seconds: float, clients: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(k: int) -> None:
        node = http_nodes[k % len(http_nodes)]
        mine: list[float] = []
        with httpx.Client(timeout=10.0, headers=H) as c:
            n = 0
            while time.monotonic() < stop:
                started = time.perf_counter()
                r = c.post(f"{node.url}/v1/recommendations",
                           json={"user_id": f"u{(k * 131 + n) % USERS}", "n": 10})
                mine.append(time.perf_counter() - started)
                n += 1
                if r.status_code != 200:
                    with lock:
                        errors[0] += 1
        with lock:
            latencies.extend(mine)

    with httpx.Client(timeout=10.0, headers=H) as http:
        cpu_before = sum(_cpu_seconds(http, n) for n in http_nodes)
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        cpu_after = sum(_cpu_seconds(http, n) for n in http_nodes)
    count = len(latencies)
    return {
        "rps": count / wall,
        "p99_ms": float(np.percentile(latencies, 99) * 1000) if latencies else float("nan"),
        "cpu_ms_per_request": (cpu_after - cpu_before) / max(count, 1) * 1000,
        "errors": errors[0],
        "requests": count,
    }


def _kill_under_load(cluster: Cluster, a: Node, b: Node, url: str) -> int:
    acknowledged: set[str] = set()
    ids = itertools.count()

    def load() -> None:
        targets = itertools.cycle([a.url, b.url])
        with httpx.Client(timeout=10.0, headers=H) as http:
            for _ in range(100):
                batch = [{"event_id": f"kill-{next(ids)}", "type": "view",
                          "user_id": f"u{k % USERS}", "item_id": f"i{k % ITEMS}",
                          "timestamp": datetime.now(UTC).isoformat()} for k in range(20)]
                for target in (next(targets), b.url):
                    try:
                        r = http.post(f"{target}/v1/events/batch", json={"events": batch})
                    except httpx.HTTPError:
                        continue
                    if r.status_code == 200:
                        acknowledged.update(e["event_id"] for e in batch)
                        break

    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(1.5)
    cluster.kill(a)
    loader.join()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        stored = Counter(r for (r,) in conn.execute(sa.text(
            "SELECT event_id FROM personify_events WHERE event_id LIKE 'kill-%'")))
    engine.dispose()
    lost = len(acknowledged - set(stored))
    doubled = sum(1 for i in acknowledged if stored[i] > 1)
    return lost + doubled


def _duplicate_sends(cluster: Cluster, b: Node, hook: str) -> tuple[int, int]:
    with httpx.Client(timeout=10.0, headers=H) as http:
        for u in range(USERS):
            http.post(f"{b.url}/v1/users/u{u}/consents",
                      json={"purpose": "push_marketing", "state": "granted"})
        http.put(f"{b.url}/v1/messaging/channels/push", json={"url": hook, "secret": "s" * 32})
        http.put(f"{b.url}/v1/messaging/templates/news", json={
            "channel": "push", "recommendations": 0,
            "variants": [{"subject": "Hi", "text": "News"}]})
        r = http.post(f"{b.url}/v1/messaging/campaigns", json={
            "name": "news", "template": "news", "channel": "push",
            "send_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()})
        enqueued = int(r.json()["enqueued"])
    deadline = time.monotonic() + 120
    while len(set(_Hook.received)) < enqueued and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)
    counts = Counter(_Hook.received)
    return sum(c - 1 for c in counts.values()), enqueued - len(counts)


def _swap_seconds(url: str, model_dir: Path, nodes: list[Node]) -> float:
    version = _train(url, model_dir)
    promoted = time.monotonic()
    pending = set(range(len(nodes)))
    latest = 0.0
    with httpx.Client(timeout=5.0) as http:
        while pending and time.monotonic() - promoted < 120:
            for k in list(pending):
                model = http.get(f"{nodes[k].url}/ready").json()["checks"]["model"]
                if model == f"serving {version}":
                    pending.discard(k)
                    latest = time.monotonic() - promoted
            time.sleep(0.02)
    return latest if not pending else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}options=-csearch_path%3D{schema}"
    work = Path(tempfile.mkdtemp(prefix="pfy-multinode-"))
    hook_server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook_server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{hook_server.server_address[1]}/hook"
    load_before = os.getloadavg()[0]
    try:
        _seed(url, work / "models")
        env = {"PERSONIFY_DATABASE_URL": url, "PERSONIFY_REDIS_URL": REDIS,
               "PERSONIFY_REDIS_PREFIX": f"bench:{schema}",
               "PERSONIFY_MODEL_DIR": str(work / "models"), "PERSONIFY_ADMIN_KEY": ADMIN,
               "PERSONIFY_TRACKING_SECRET": "t" * 32, "PERSONIFY_MODEL_REFRESH_SECONDS": "1",
               "PERSONIFY_LOG_LEVEL": "warning", "PERSONIFY_WEBHOOK_ALLOW_HTTP": "true",
               "PERSONIFY_WEBHOOK_ALLOW_HOSTS": '["127.0.0.1"]',
               "PERSONIFY_RATE_LIMIT_PER_MINUTE": "0",
               "PERSONIFY_RATE_LIMIT_TENANT_PER_MINUTE": "0"}
        with Cluster(env, work) as cluster:
            a = cluster.server("server-a")
            cluster.wait_ready([a])
            _load([a], 2.0, args.clients)  # warm the caches
            one = _load([a], args.seconds, args.clients)
            b = cluster.server("server-b")
            cluster.wait_ready([b])
            _load([b], 2.0, args.clients)
            two = _load([a, b], args.seconds, args.clients)
            swap = _swap_seconds(url, work / "models", [a, b])
            for k in (1, 2):
                cluster.worker(f"worker-{k}", "messages", "--poll", "0.2")
            lost = _kill_under_load(cluster, a, b, url)
            duplicates, undelivered = _duplicate_sends(cluster, b, hook)
    finally:
        hook_server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    metrics = {
        "multinode_lost_events": lost,
        "multinode_duplicate_sends": duplicates,
        "multinode_undelivered_messages": undelivered,
        "model_swap_seconds_across_servers": round(swap, 3),
        "one_server_requests_per_s": round(one["rps"], 1),
        "one_server_p99_ms": round(one["p99_ms"], 1),
        "one_server_cpu_ms_per_request": round(one["cpu_ms_per_request"], 2),
        "two_servers_requests_per_s": round(two["rps"], 1),
        "two_servers_p99_ms": round(two["p99_ms"], 1),
        "two_servers_cpu_ms_per_request": round(two["cpu_ms_per_request"], 2),
        "multinode_request_errors": one["errors"] + two["errors"],
        "multinode_clients": args.clients,
        "multinode_note": "2 servers on the same 2 cores (with the client and other jobs) "
                          "cannot show scaling; size from the CPU per request",
        "multinode_load_average_1m_before": round(load_before, 2),
    }
    path = merge_results("scale", metrics, {"multinode": "python " + " ".join(sys.argv)})
    print(json.dumps(metrics, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
