"""Event store append speed: 10,000-event batches into a SQLite file and into PostgreSQL.

    python benchmarks/store_append.py [--batches 20] [--postgres-url URL]

Writes ``benchmarks/results/store_append.json`` with ``events_per_s_sqlite`` and
``events_per_s_postgres`` (durable commits: SQLite WAL + synchronous=FULL, PostgreSQL default
fsync), plus the rate of re-sending a batch of duplicates and of a full scan. ``events_per_cpu_s``
divides by the CPU time of this process instead of wall time: on a shared machine it shows what
one free core achieves (for PostgreSQL it leaves out the server's own CPU).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._postgres import postgres_schema_url
from benchmarks._report import write_results
from personify.domain.events import Context, Event
from personify.storage.registry import open_stores

BATCH = 10_000
TENANT = "default"


def make_batches(count: int, seed: int = 7) -> list[list[Event]]:
    """Realistic events: most logged in, some anonymous, some attributed to a recommendation."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    types = ["view"] * 6 + ["click"] * 2 + ["add_to_cart", "purchase"]
    batches = []
    for b in range(count):
        batch = []
        for i in range(BATCH):
            n = b * BATCH + i
            anonymous = rng.random() < 0.3
            batch.append(
                Event(
                    event_id=uuid.UUID(int=rng.getrandbits(128)).hex,
                    type=rng.choice(types),
                    user_id=None if anonymous else f"user-{rng.randrange(50_000)}",
                    anonymous_id=f"anon-{rng.randrange(80_000)}" if anonymous else None,
                    item_id=f"item-{rng.randrange(20_000)}",
                    recommendation_id=f"rec-{n}" if rng.random() < 0.2 else None,
                    timestamp=start + timedelta(seconds=n // 3),
                    context=Context(device="mobile", channel="web", page="/p"),
                )
            )
        batches.append(batch)
    return batches


def measure(url: str, batches: list[list[Event]]) -> dict[str, float]:
    with open_stores(url) as stores:
        started, cpu_started = time.perf_counter(), time.process_time()
        for batch in batches:
            result = stores.events.append(TENANT, batch)
            assert len(result.stored) == len(batch), "fresh ids must all be stored"
        append_s = time.perf_counter() - started
        append_cpu_s = time.process_time() - cpu_started
        started = time.perf_counter()
        again = stores.events.append(TENANT, batches[0])
        duplicate_s = time.perf_counter() - started
        assert len(again.duplicates) == BATCH
        started = time.perf_counter()
        scanned = sum(1 for _ in stores.events.scan(TENANT))
        scan_s = time.perf_counter() - started
        total = sum(len(b) for b in batches)
        assert scanned == total == stores.events.count(TENANT)
    return {
        "events_per_s": round(total / append_s),
        "events_per_cpu_s": round(total / append_cpu_s),
        "duplicate_batch_events_per_s": round(BATCH / duplicate_s),
        "scan_events_per_s": round(scanned / scan_s),
        "events": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    args = parser.parse_args()
    batches = make_batches(args.batches)
    metrics: dict[str, Any] = {"batch_size": BATCH, "batches": args.batches}
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = measure(f"sqlite:///{tmp}/bench.db", batches)
    metrics.update({f"{k}_sqlite": v for k, v in sqlite.items() if k != "events"})
    print("sqlite", sqlite)
    url, drop = postgres_schema_url(args.postgres_url)
    try:
        postgres = measure(url, batches)
    finally:
        drop()
    metrics.update({f"{k}_postgres": v for k, v in postgres.items() if k != "events"})
    print("postgres", postgres)
    metrics["events"] = sqlite["events"]
    load = [round(x, 1) for x in os.getloadavg()]
    print(write_results("store_append", metrics, load_average_1_5_15_min=load))


if __name__ == "__main__":
    main()
