"""Sustained ingestion over HTTP: ``POST /v1/events/batch`` into SQLite (durable commits) and into
PostgreSQL, with the server (uvicorn, one worker) and the load generator in separate processes;
then the bulk import of the full UCI Online Retail file.

    python benchmarks/ingest.py [--seconds 25] [--batch 2000] [--connections 4] [--workers 2]
                                [--backends sqlite,postgres] [--skip-import] [--profile DIR]
                                [--online-state] [--realistic] [--quick]

``--workers`` is ``personify serve --workers N`` (uvicorn worker processes; SQLite's WAL and
busy timeout serialise their commits). ``--online-state`` makes profiling consent opt-out so
every event also feeds the (per-process, in-memory) online state; by default consent is
opt-in and the privacy gate admits nothing, as on a fresh installation.

``--realistic`` runs, per backend, a baseline (the plain run above, no online state) and then a
deployment as it lives: people consented (profiling and personalization opt-out, email marketing
granted to everyone who arrives with a profile), the online state fed, messaging on with every
built-in journey enabled, and traffic as it comes: mixed event types (views, clicks, searches,
carts, purchases, ratings), new people and items arriving while events flow (an admin client
creating profiles with consent and adding items), browser-sized batches (5-100 events) mixed
with server batches (500-2,000), ids repeated inside a batch and whole batches retried, and bad
records interleaved (about 2 %: unknown types, NaN / negative amounts, control characters,
missing ids), each refused by index while the rest is stored. Keys
``realistic_events_per_s_<backend>`` and ``realistic_ratio_to_baseline_<backend>``.
``--realistic --quick`` runs 6 seconds per run and only prints (no results file written).

Checks, per backend: every acknowledged event is in the store (``lost_events``), no event is
stored twice and every re-sent batch is acknowledged as duplicates (``duplicate_events``).
Writes ``benchmarks/results/ingest.json``. Internal sub-commands ``serve`` and ``load`` are the
two processes it starts.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from benchmarks._report import RESULTS_DIR as RESULTS
from benchmarks._report import write_results

TENANT = "default"
ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "datasets" / "online_retail_uci" / "online_retail.csv.gz"
POSTGRES_SERVER = os.environ.get(
    "PERSONIFY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RESEND_EVERY = 10
"""Every 10th batch is sent twice: the second answer must be all duplicates."""


# --- the server process -----------------------------------------------------------------------


def serve(url: str, port: int, profile: str | None, workers: int = 1) -> None:
    """Run the API on 127.0.0.1:``port`` until SIGINT / SIGTERM (optionally under cProfile);
    several workers run as ``personify serve --workers N`` does (an app factory per process)."""
    import uvicorn

    from personify.api import create_app
    from personify.settings import load_settings

    if workers > 1:
        os.environ["PERSONIFY_DATABASE_URL"] = url
        create_app(load_settings(database_url=url)).state.runtime.stores.close()  # migrate once
        uvicorn.run(
            "personify.cli.asgi:app_from_environment", factory=True, host="127.0.0.1",
            port=port, workers=workers, log_level="warning", access_log=False,
            timeout_worker_healthcheck=60,
        )
        return
    app = create_app(load_settings(database_url=url))
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)


# --- the load generator process -------------------------------------------------------------------

_TYPES = (b"view", b"view", b"view", b"click", b"add_to_cart", b"purchase")


def batch_body(worker: int, seq: int, size: int, timestamp: bytes) -> bytes:
    """A JSON array of ``size`` events whose ids encode (worker, seq, i)."""
    parts = []
    for i in range(size):
        kind = _TYPES[(seq + i) % len(_TYPES)]
        extra = b',"price":12.5,"quantity":2,"order_id":"o%d-%d"' % (worker, seq) \
            if kind == b"purchase" else b""
        parts.append(
            b'{"event_id":"w%d-%d-%d","type":"%s","user_id":"u%d","item_id":"i%d",'
            b'"timestamp":"%s","context":{"device":"mobile","channel":"web","locale":"de-DE"}%s}'
            % (worker, seq, i, kind, (seq * 7 + i) % 20_000, (i * 13 + seq) % 5_000,
               timestamp, extra)
        )
    return b"[" + b",".join(parts) + b"]"


_REALISTIC_TYPES = (b"view",) * 10 + (b"click",) * 4 + (b"search", b"add_to_cart", b"add_to_cart",
                                                     b"purchase", b"rating")
_BAD_RECORDS = (
    b'{"event_id":"bad-%d-%d-%d","type":"teleport","user_id":"u1","item_id":"i1"}',
    b'{"event_id":"bad-%d-%d-%d","type":"purchase","user_id":"u1","item_id":"i1","price":-5}',
    b'{"event_id":"bad-%d-%d-%d","type":"view","user_id":"u\\u0000x","item_id":"i1"}',
    b'{"event_id":"bad-%d-%d-%d","type":"view","item_id":"i1"}',
    b'{"event_id":"bad-%d-%d-%d","type":"purchase","user_id":"u1","item_id":"i1","quantity":1e300}',
)


def realistic_body(worker: int, seq: int, size: int, timestamp: bytes,
                   new_users: int) -> tuple[bytes, list[tuple[int, str]], int, int]:
    """A batch as real clients send it: mixed types, ~2 % bad records, ~1 % ids repeated inside
    the batch; returns the body, the (index, event id) of its good records, and the numbers of
    bad records and of repeats."""
    parts: list[bytes] = []
    good: list[tuple[int, str]] = []
    bad = repeats = 0
    for i in range(size):
        mix = (seq * 31 + i * 17 + worker * 7) % 100
        if mix < 2:
            parts.append(_BAD_RECORDS[(seq + i) % len(_BAD_RECORDS)] % (worker, seq, i))
            bad += 1
            continue
        if mix == 2 and good:  # the same event twice in one batch (a client's double send)
            parts.append(parts[good[-1][0]])
            repeats += 1
            continue
        kind = _REALISTIC_TYPES[(seq * 3 + i) % len(_REALISTIC_TYPES)]
        # most events come from known people, some from people who arrived during the run
        user = (b"u%d" % ((seq * 7 + i) % 20_000)) if mix % 5 else (
            b"p%d-%d" % (worker, (seq + i) % max(new_users, 1)))
        event_id = f"r{worker}-{seq}-{i}"
        extra = b""
        if kind == b"purchase":
            extra = b',"price":%d.5,"quantity":%d,"order_id":"o%d-%d"' % (
                5 + i % 90, 1 + i % 3, worker, seq)
        elif kind == b"rating":
            extra = b',"value":%d' % (1 + i % 5)
        elif kind == b"search":
            extra = b',"query":"red shoes %d"' % (i % 50)
        item = b',"item_id":"i%d"' % ((i * 13 + seq) % 5_000) if kind != b"search" else b""
        good.append((len(parts), event_id))
        parts.append(
            b'{"event_id":"%s","type":"%s","user_id":"%s"%s,"timestamp":"%s",'
            b'"context":{"device":"%s","channel":"web","locale":"de-DE"}%s}'
            % (event_id.encode(), kind, user, item, timestamp,
               b"mobile" if i % 3 else b"desktop", extra)
        )
    return b"[" + b",".join(parts) + b"]", good, bad, repeats


def post(conn: http.client.HTTPConnection, path: str, body: bytes,
         headers: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
    """(status, JSON answer) of one POST on a keep-alive connection; None when it failed."""
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        return None
    return response.status, (orjson.loads(data) if data else {})


def resend(conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str],
           stats: dict[str, int], lock: threading.Lock) -> None:
    """Send a batch again, as a client retrying after a lost answer, and count how the
    duplicates were answered."""
    again = post(conn, "/v1/events/batch", body, headers)
    with lock:
        stats["resent_batches"] += 1
        if again is not None and again[0] in (200, 207):
            stats["resent_stored"] += again[1]["stored"]
            stats["resent_duplicates"] += again[1]["duplicates"]


def run_clients(threads: list[threading.Thread], latencies: list[float]) -> dict[str, Any]:
    """Start the client threads, wait for them all; the wall time and batch latency p50/p99."""
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "wall_seconds": wall,
        "p50_batch_latency_ms": round(1000 * latencies[len(latencies) // 2], 1)
        if latencies else None,
        "p99_batch_latency_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1)
        if latencies else None,
    }


def load_realistic(port: int, secret: str, admin: str, seconds: float,
                   connections: int) -> dict[str, Any]:
    """``connections`` clients sending realistic batches (browser-sized and server-sized, good
    and bad records, repeats, retries) while an admin client adds people (with consent) and
    items; report the acknowledged good event ids."""
    deadline = time.monotonic() + seconds
    timestamp = (datetime.now(UTC) - timedelta(minutes=1)).isoformat().encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
    admin_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {admin}"}
    lock = threading.Lock()
    acked: list[str] = []
    stats: dict[str, int] = {"requests": 0, "errors": 0, "resent_batches": 0, "resent_stored": 0,
                             "resent_duplicates": 0, "bad_records_sent": 0,
                             "bad_records_refused": 0, "good_records_refused": 0,
                             "in_batch_repeats": 0, "people_added": 0, "items_added": 0,
                             "admin_errors": 0}
    arrived = {"people": 0}
    latencies: list[float] = []

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        seq = 0
        while time.monotonic() < deadline:
            # browser-sized batches most of the time, a server's batch every fourth
            size = 500 + (seq * 379) % 1_501 if seq % 4 == 3 else 5 + (seq * 37) % 96
            body, good, bad, repeats = realistic_body(index, seq, size, timestamp,
                                                      arrived["people"])
            started = time.perf_counter()
            answer = post(conn, "/v1/events/batch", body, headers)
            elapsed = time.perf_counter() - started
            with lock:
                stats["requests"] += 1
                latencies.append(elapsed)
                stats["bad_records_sent"] += bad
                stats["in_batch_repeats"] += repeats
                if answer is None or answer[0] not in (200, 207):
                    stats["errors"] += 1
                else:
                    refused = {r["index"] for r in answer[1].get("rejected", [])}
                    good_index = {i for i, _ in good}
                    stats["bad_records_refused"] += len(refused - good_index)
                    stats["good_records_refused"] += len(refused & good_index)
                    acked.extend(event_id for i, event_id in good if i not in refused)
            if answer is not None and seq % RESEND_EVERY == 0:  # a retry after a lost answer
                resend(conn, body, headers, stats, lock)
            seq += 1
        conn.close()

    def arrivals() -> None:
        """People sign up (profile, e-mail consent) and the catalogue grows while events flow."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        n = 0
        while time.monotonic() < deadline:
            users = [{"user_id": f"p{w}-{n + k}", "profile": {
                "email": f"p{w}-{n + k}@example.test", "time_zone": "Europe/Berlin",
                "language": "de"}} for w in range(connections) for k in range(5)]
            items = [{"item_id": f"new-{n + k}", "title": f"New thing {n + k}",
                      "categories": ["new"], "price": 10 + k} for k in range(20)]
            ok_users = post(conn, "/v1/users:bulk", orjson.dumps(users), admin_headers)
            ok_items = post(conn, "/v1/items:bulk", orjson.dumps(items), admin_headers)
            granted = 0
            for user in users[:connections]:
                answer = post(conn, f"/v1/users/{user['user_id']}/consents/email_marketing:grant",
                              b'{"source":"signup","text_version":"2026-12"}', admin_headers)
                granted += answer is not None and answer[0] == 201
            with lock:
                if ok_users is None or ok_users[0] != 200 or ok_items is None \
                        or ok_items[0] != 200 or granted != connections:
                    stats["admin_errors"] += 1
                stats["people_added"] += len(users)
                stats["items_added"] += len(items)
            n += 5
            arrived["people"] = n
            time.sleep(0.2)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    threads.append(threading.Thread(target=arrivals))
    timing = run_clients(threads, latencies)  # before ``stats`` is read: the threads fill it
    return {**stats, **timing, "acked_ids": acked}


def load(port: int, secret: str, seconds: float, batch: int, connections: int) -> dict[str, Any]:
    """Post batches on ``connections`` keep-alive connections for ``seconds``; report what was
    acknowledged (as (worker, seq) batch keys) and how re-sends were answered."""
    deadline = time.monotonic() + seconds
    timestamp = (datetime.now(UTC) - timedelta(minutes=1)).isoformat().encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
    lock = threading.Lock()
    acked: list[tuple[int, int]] = []
    stats: dict[str, int] = {"requests": 0, "errors": 0, "resent_batches": 0,
                             "resent_stored": 0, "resent_duplicates": 0, "stored_reported": 0}
    latencies: list[float] = []

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        seq = 0
        while time.monotonic() < deadline:
            body = batch_body(index, seq, batch, timestamp)
            started = time.perf_counter()
            sent = post(conn, "/v1/events/batch", body, headers)
            elapsed = time.perf_counter() - started
            answer = sent[1] if sent is not None and sent[0] == 200 else None
            with lock:
                stats["requests"] += 1
                latencies.append(elapsed)
                if answer is None or answer["accepted"] != batch:
                    stats["errors"] += 1
                else:
                    acked.append((index, seq))
                    stats["stored_reported"] += answer["stored"]
            if answer is not None and seq % RESEND_EVERY == 0:
                resend(conn, body, headers, stats, lock)
            seq += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    timing = run_clients(threads, latencies)
    return {**stats, **timing, "acked_batches": acked, "batch": batch}


# --- the driver ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server on port {port} did not become ready in {timeout} s")


def stored_ids(url: str) -> tuple[int, set[str]]:
    """(rows, distinct event ids) of the tenant, read straight from the database."""
    import sqlalchemy as sa

    from personify.storage.sql.database import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ids = list(conn.execute(
                sa.text("SELECT event_id FROM personify_events WHERE tenant = :t"), {"t": TENANT}
            ).scalars())
    finally:
        engine.dispose()
    return len(ids), set(ids)


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process and its live descendants (uvicorn workers) have
    used so far (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = _stat(current)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        todo.extend(children.get(current, []))
    return total / os.sysconf("SC_CLK_TCK")


def serve_and_load(
    url: str, env: dict[str, str], workers: int, load_command: list[str], *,
    profile: str | None = None, on_ready: Callable[[int], Any] | None = None,
) -> tuple[dict[str, Any], float, Any]:
    """Serve ``url`` (``workers`` uvicorn processes), run ``on_ready(port)`` once it answers,
    then the load generator ``load_command`` (a subcommand of this file and its arguments, the
    port added) in its own process; returns (its report, the server's CPU seconds during the
    load, what ``on_ready`` returned)."""
    port = free_port()
    serve_cmd = [sys.executable, __file__, "serve", "--url", url, "--port", str(port),
                 "--workers", str(workers)]
    if profile:
        serve_cmd += ["--profile", profile]
    server = subprocess.Popen(serve_cmd, env=env)
    try:
        wait_ready(port)
        prepared = on_ready(port) if on_ready is not None else None
        cpu_before = cpu_seconds(server.pid)
        loader = subprocess.run(
            [sys.executable, __file__, load_command[0], "--port", str(port), *load_command[1:]],
            check=True, capture_output=True, env=env,
        )
        server_cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return json.loads(loader.stdout), server_cpu, prepared


def run_backend(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Start the server on ``url``, drive load from another process, verify the store."""
    from personify.domain.keys import Scope
    from personify.storage.registry import open_stores

    with open_stores(url) as stores:
        _key, secret = stores.keys.create(TENANT, "benchmark", [Scope.INGEST])
    env = {**os.environ, "PERSONIFY_DEMO": "0"}
    if args.online_state:
        env["PERSONIFY_CONSENT_DEFAULTS"] = json.dumps({"profiling": "opt-out"})
    report, server_cpu, _ = serve_and_load(
        url, env, args.workers,
        ["load", "--secret", secret, "--seconds", str(args.seconds), "--batch", str(args.batch),
         "--connections", str(args.connections)],
        profile=str(Path(args.profile) / f"server-{name}.prof") if args.profile else None,
    )
    acked = report.pop("acked_batches")
    expected = {f"w{w}-{s}-{i}" for w, s in acked for i in range(report["batch"])}
    rows, ids = stored_ids(url)
    lost = len(expected - ids)
    duplicates = (rows - len(ids)) + report["resent_stored"]
    return {
        "events_per_s": round(len(expected) / report["wall_seconds"]),
        "server_cpu_seconds": round(server_cpu, 1),
        "events_per_server_cpu_second": round(
            (len(expected) + report["resent_duplicates"]) / server_cpu) if server_cpu else None,
        "acknowledged_events": len(expected),
        "stored_rows": rows,
        "lost_events": lost,
        "duplicate_events": duplicates,
        "stored_but_unacknowledged": len(ids - expected),
        "resent_batches": report["resent_batches"],
        "resent_events_acknowledged_as_duplicates": report["resent_duplicates"],
        "requests": report["requests"],
        "failed_requests": report["errors"],
        "p50_batch_latency_ms": report["p50_batch_latency_ms"],
        "p99_batch_latency_ms": report["p99_batch_latency_ms"],
        "seconds": round(report["wall_seconds"], 1),
    }


def _enable_builtin_journeys(port: int, admin: str) -> list[str]:
    """Enable every built-in journey through the API; returns the names it enabled."""
    from personify.messaging.journey_definitions import builtin_journeys

    enabled = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for name in sorted(builtin_journeys()):
        conn.request("POST", f"/v1/messaging/journeys/{name}/enable",
                     headers={"Authorization": f"Bearer {admin}"})
        response = conn.getresponse()
        response.read()
        if response.status == 200:
            enabled.append(name)
        else:
            print(f"journey {name}: {response.status}", file=sys.stderr)
    conn.close()
    return enabled


def run_realistic(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """The realistic run on ``url``: consented people, online state, messaging and the built-in
    journeys on, realistic traffic; verify every acknowledged good event is stored once."""
    from personify.domain.keys import Scope
    from personify.storage.registry import open_stores

    with open_stores(url) as stores:
        _key, secret = stores.keys.create(TENANT, "benchmark", [Scope.INGEST])
        _key, admin = stores.keys.create(TENANT, "benchmark-admin", [Scope.ADMIN])
    env = {**os.environ, "PERSONIFY_DEMO": "0", "PERSONIFY_MESSAGING_ENABLED": "1",
           "PERSONIFY_TRACKING_SECRET": "benchmark-tracking-secret-0123456789",
           "PERSONIFY_CONSENT_DEFAULTS": json.dumps(
               {"profiling": "opt-out", "personalization": "opt-out"})}
    report, server_cpu, journeys = serve_and_load(
        url, env, args.workers,
        ["load-realistic", "--secret", secret, "--admin", admin, "--seconds", str(args.seconds),
         "--connections", str(args.connections)],
        on_ready=lambda port: _enable_builtin_journeys(port, admin),
    )
    expected = set(report.pop("acked_ids"))
    rows, ids = stored_ids(url)
    good_ids = {i for i in ids if i.startswith("r")}
    return {
        "events_per_s": round(len(expected) / report["wall_seconds"]),
        "server_cpu_seconds": round(server_cpu, 1),
        "events_per_server_cpu_second": round(len(expected) / server_cpu) if server_cpu else None,
        "acknowledged_events": len(expected),
        "stored_rows": rows,
        "lost_events": len(expected - ids),
        "duplicate_events": (rows - len(ids)) + report["resent_stored"],
        "stored_but_unacknowledged": len(good_ids - expected),
        "bad_records_stored": len(ids - good_ids),
        "journeys_enabled": journeys,
        **{k: report[k] for k in (
            "bad_records_sent", "bad_records_refused", "good_records_refused",
            "in_batch_repeats", "resent_batches", "resent_duplicates", "people_added",
            "items_added", "admin_errors", "requests", "errors", "p50_batch_latency_ms",
            "p99_batch_latency_ms")},
        "seconds": round(report["wall_seconds"], 1),
    }


def postgres_database() -> tuple[str, str]:
    """Create a fresh database on the PostgreSQL server; returns (its URL, its name)."""
    import sqlalchemy as sa

    name = f"personify_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    base = POSTGRES_SERVER.rsplit("/", 1)[0]
    return f"{base}/{name}", name


def drop_postgres_database(name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def import_online_retail(tmp: Path) -> float | None:
    """Seconds to import the full Online Retail file into a fresh SQLite file (None when the
    bulk importer or the dataset is absent)."""
    try:
        from personify.jobs.bulk_import import import_file
    except ImportError:
        print("personify.jobs.bulk_import is not available: import_seconds_online_retail = null")
        return None
    if not DATASET.exists():
        print(f"{DATASET} not found: import_seconds_online_retail = null")
        return None
    from personify.storage.registry import open_stores

    with open_stores(f"sqlite:///{tmp / 'import.db'}") as stores:
        started = time.perf_counter()
        import_file(DATASET, "all", stores, TENANT, preset="online-retail", progress=False)
        return round(time.perf_counter() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command")
    serve_p = sub.add_parser("serve")
    serve_p.add_argument("--url", required=True)
    serve_p.add_argument("--port", type=int, required=True)
    serve_p.add_argument("--profile", default=None)
    serve_p.add_argument("--workers", type=int, default=1)
    load_p = sub.add_parser("load")
    load_p.add_argument("--port", type=int, required=True)
    load_p.add_argument("--secret", required=True)
    real_p = sub.add_parser("load-realistic")
    real_p.add_argument("--port", type=int, required=True)
    real_p.add_argument("--secret", required=True)
    real_p.add_argument("--admin", required=True)
    for p in (parser, load_p, real_p):
        p.add_argument("--seconds", type=float, default=25.0)
        p.add_argument("--batch", type=int, default=2_000)
        p.add_argument("--connections", type=int, default=4)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--profile", default=None, help="directory for server cProfile dumps")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--online-state", action="store_true",
                        help="profiling consent opt-out: every event feeds the online state")
    parser.add_argument("--realistic", action="store_true",
                        help="per backend, the baseline then the realistic deployment and traffic")
    parser.add_argument("--quick", action="store_true",
                        help="6-second runs that print their figures and write no results file")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.url, args.port, args.profile, args.workers)
        return
    if args.command == "load":
        report = load(args.port, args.secret, args.seconds, args.batch, args.connections)
        sys.stdout.write(json.dumps(report))
        return
    if args.command == "load-realistic":
        report = load_realistic(args.port, args.secret, args.admin, args.seconds,
                                args.connections)
        sys.stdout.write(json.dumps(report))
        return
    if args.quick:
        args.seconds = 6.0
    if args.realistic:
        run_realistic_comparison(args)
        return
    run(args)


def run_realistic_comparison(args: argparse.Namespace) -> None:
    """Baseline and realistic run per backend, merged into results/ingest.json (the other keys
    are kept)."""
    load_before = os.getloadavg()
    per_backend: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for backend in args.backends.split(","):
            runs: dict[str, Any] = {}
            for kind, runner in (("baseline", run_backend), ("realistic", run_realistic)):
                if backend == "sqlite":
                    runs[kind] = runner(backend, f"sqlite:///{tmp / f'{kind}.db'}", args)
                else:
                    url, name = postgres_database()
                    try:
                        runs[kind] = runner(backend, url, args)
                    finally:
                        drop_postgres_database(name)
                runs[kind]["load_average_1m_after"] = round(os.getloadavg()[0], 2)
                print(backend, kind, json.dumps(runs[kind], indent=1))
            per_backend[backend] = runs
    if args.quick:  # a smoke run: its figures are printed above, results/ingest.json is kept
        return
    path = RESULTS / "ingest.json"
    existing = json.loads(path.read_text()) if path.exists() else {"metrics": {}}
    metrics = dict(existing.get("metrics", {}))
    for backend, runs in per_backend.items():
        base, real = runs["baseline"]["events_per_s"], runs["realistic"]["events_per_s"]
        metrics[f"realistic_events_per_s_{backend}"] = real
        metrics[f"realistic_baseline_events_per_s_{backend}"] = base
        metrics[f"realistic_ratio_to_baseline_{backend}"] = round(real / base, 3) if base else None
        metrics[f"realistic_lost_events_{backend}"] = runs["realistic"]["lost_events"]
        metrics[f"realistic_duplicate_events_{backend}"] = runs["realistic"]["duplicate_events"]
    metrics["realistic_load_average_1m_before"] = round(load_before[0], 2)
    metrics["realistic_load_average_1m_after"] = round(os.getloadavg()[0], 2)
    metrics["realistic_connections"] = args.connections
    metrics["realistic_workers"] = args.workers
    metrics["realistic_per_backend"] = per_backend
    extra = {k: v for k, v in existing.items() if k not in ("name", "metrics", "hardware", "date",
                                                             "command")}
    if "command" in existing and not str(existing["command"]).count("--realistic"):
        # the other keys came from another run: keep its command and date beside them
        extra["command_of_the_other_keys"] = existing["command"]
        extra["date_of_the_other_keys"] = existing.get("date")
    written = write_results("ingest", metrics, **extra)
    for key, value in metrics.items():
        if key.startswith("realistic_") and key != "realistic_per_backend":
            print(f"{key:44} {value}")
    print(f"wrote {written}")


def run(args: argparse.Namespace) -> None:
    results: dict[str, dict[str, Any]] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                results["sqlite"] = run_backend("sqlite", f"sqlite:///{tmp / 'http.db'}", args)
            elif backend == "postgres":
                url, name = postgres_database()
                try:
                    results["postgres"] = run_backend("postgres", url, args)
                finally:
                    drop_postgres_database(name)
            print(backend, json.dumps(results.get(backend), indent=1))
        import_seconds = None if args.skip_import else import_online_retail(tmp)
    metrics: dict[str, Any] = {
        "http_events_per_s_sqlite": results.get("sqlite", {}).get("events_per_s"),
        "http_events_per_s_postgres": results.get("postgres", {}).get("events_per_s"),
        "import_seconds_online_retail": import_seconds,
        "http_events_per_server_cpu_second_sqlite": results.get("sqlite", {}).get(
            "events_per_server_cpu_second"),
        "http_events_per_server_cpu_second_postgres": results.get("postgres", {}).get(
            "events_per_server_cpu_second"),
        "lost_events": sum(r["lost_events"] for r in results.values()),
        "duplicate_events": sum(r["duplicate_events"] for r in results.values()),
        "batch_size": args.batch,
        "connections": args.connections,
        "workers": args.workers,
        "online_state_fed": args.online_state,
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "per_backend": results,
    }
    path = write_results("ingest", metrics)
    for key, value in metrics.items():
        if key != "per_backend":
            print(f"{key:32} {value}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
