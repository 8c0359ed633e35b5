"""Sustained ingestion over HTTP: ``POST /v1/events/batch`` into SQLite (durable commits) and into
PostgreSQL, with the server (uvicorn, one worker) and the load generator in separate processes;
then the bulk import of the full UCI Online Retail file.

    python benchmarks/ingest.py [--seconds 25] [--batch 2000] [--connections 4] [--workers 2]
                                [--backends sqlite,postgres] [--skip-import] [--profile DIR]
                                [--online-state]

``--workers`` is ``personify serve --workers N`` (uvicorn worker processes; SQLite's WAL and
busy timeout serialise their commits). ``--online-state`` makes profiling consent opt-out so
every event also feeds the (per-process, in-memory) online state; by default consent is
opt-in and the privacy gate admits nothing, as on a fresh installation.

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

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
        create_app(load_settings(database_url=url)).state.stores.close()  # migrate once
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

    def post(conn: http.client.HTTPConnection, body: bytes) -> dict[str, Any] | None:
        try:
            conn.request("POST", "/v1/events/batch", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            return None
        if response.status != 200:
            return None
        answer: dict[str, Any] = orjson.loads(data)
        return answer

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        seq = 0
        while time.monotonic() < deadline:
            body = batch_body(index, seq, batch, timestamp)
            started = time.perf_counter()
            answer = post(conn, body)
            elapsed = time.perf_counter() - started
            with lock:
                stats["requests"] += 1
                latencies.append(elapsed)
                if answer is None or answer["accepted"] != batch:
                    stats["errors"] += 1
                else:
                    acked.append((index, seq))
                    stats["stored_reported"] += answer["stored"]
            if answer is not None and seq % RESEND_EVERY == 0:
                again = post(conn, body)
                with lock:
                    stats["resent_batches"] += 1
                    if again is not None:
                        stats["resent_stored"] += again["stored"]
                        stats["resent_duplicates"] += again["duplicates"]
            seq += 1
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        **stats,
        "wall_seconds": wall,
        "acked_batches": acked,
        "batch": batch,
        "p50_batch_latency_ms": round(1000 * latencies[len(latencies) // 2], 1)
        if latencies else None,
        "p99_batch_latency_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1)
        if latencies else None,
    }


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


def run_backend(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Start the server on ``url``, drive load from another process, verify the store."""
    from personify.domain.keys import Scope
    from personify.storage.registry import open_stores

    with open_stores(url) as stores:
        _key, secret = stores.keys.create(TENANT, "benchmark", [Scope.INGEST])
    port = free_port()
    env = {**os.environ, "PERSONIFY_DEMO": "0"}
    if args.online_state:
        env["PERSONIFY_CONSENT_DEFAULTS"] = json.dumps({"profiling": "opt-out"})
    serve_cmd = [sys.executable, __file__, "serve", "--url", url, "--port", str(port),
                 "--workers", str(args.workers)]
    if args.profile:
        serve_cmd += ["--profile", str(Path(args.profile) / f"server-{name}.prof")]
    server = subprocess.Popen(serve_cmd, env=env)
    try:
        wait_ready(port)
        cpu_before = cpu_seconds(server.pid)
        loader = subprocess.run(
            [sys.executable, __file__, "load", "--port", str(port), "--secret", secret,
             "--seconds", str(args.seconds), "--batch", str(args.batch),
             "--connections", str(args.connections)],
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
    report = json.loads(loader.stdout)
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
    for p in (parser, load_p):
        p.add_argument("--seconds", type=float, default=25.0)
        p.add_argument("--batch", type=int, default=2_000)
        p.add_argument("--connections", type=int, default=4)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--profile", default=None, help="directory for server cProfile dumps")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--online-state", action="store_true",
                        help="profiling consent opt-out: every event feeds the online state")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.url, args.port, args.profile, args.workers)
        return
    if args.command == "load":
        report = load(args.port, args.secret, args.seconds, args.batch, args.connections)
        sys.stdout.write(json.dumps(report))
        return
    run(args)


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
