"""Online state throughput, read latency and bytes per active user, in-process and Redis.

Replays Gowalla-sized traffic (the LightGCN Gowalla train split when present, else synthetic:
~30k users, ~41k items, 0.8M events) as timestamped sessions over 30 days, with event types
and countries drawn at random, and writes ``benchmarks/results/online_state.json``.

    python benchmarks/online_state.py [--events 800000] [--batch 500] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_results
from personify.domain.events import Event
from personify.storage.online.memory import MemoryOnlineState
from personify.storage.online.port import OnlineState

TENANT = "bench"
END = datetime(2024, 6, 1, tzinfo=UTC)
TYPES = ["view"] * 75 + ["click"] * 15 + ["add_to_cart"] * 5 + ["purchase"] * 4 + ["dislike"]
COUNTRIES = ["US", "DE", "FR", "GB", "SE", "JP", "BR", "IN", "RU", "ES", "IT", "NL"]
GOWALLA = Path(__file__).resolve().parents[2] / "shared/datasets/gowalla_lightgcn/train.txt"
Row = tuple[float, str, str, str, str]
"""(timestamp, user, item, type, country)."""


def load_interactions(limit: int, rng: random.Random) -> tuple[dict[int, list[int]], str]:
    """User -> items from Gowalla when available, else a Zipf-like synthetic set."""
    if GOWALLA.exists():
        users: dict[int, list[int]] = {}
        with GOWALLA.open() as fh:
            for line in fh:
                parts = line.split()
                if len(parts) > 1:
                    users[int(parts[0])] = [int(p) for p in parts[1:]]
        return users, str(GOWALLA)
    users = {}
    weights = [1 / (k + 1) ** 0.8 for k in range(41_000)]
    for user in range(30_000):
        users[user] = rng.choices(range(41_000), weights, k=max(1, int(rng.expovariate(1 / 27))))
    return users, "synthetic"


def timeline(users: dict[int, list[int]], limit: int, rng: random.Random) -> list[Row]:
    """Spread each user's items into sessions over 30 days; return rows in time order."""
    rows: list[Row] = []
    start = (END - timedelta(days=30)).timestamp()
    for user, items in users.items():
        country = rng.choice(COUNTRIES)
        ts = start + rng.uniform(0, 20 * 86400)
        order = items[:]
        rng.shuffle(order)
        for k, item in enumerate(order):
            ts += rng.uniform(20, 300) if k % 8 else rng.uniform(3600, 3 * 86400)
            rows.append((min(ts, END.timestamp()), str(user), str(item), rng.choice(TYPES),
                         country))
    rows.sort()
    return rows[:limit]


def batches(rows: Sequence[Row], size: int) -> Iterator[list[Event]]:
    for start in range(0, len(rows), size):
        yield [
            Event.model_validate(
                {
                    "event_id": f"e{start + k}",
                    "type": kind,
                    "user_id": user,
                    "item_id": item,
                    "timestamp": datetime.fromtimestamp(ts, UTC),
                    "context": {"location": {"country": country}},
                }
            )
            for k, (ts, user, item, kind, country) in enumerate(rows[start : start + size])
        ]


def replay(state: OnlineState, rows: Sequence[Row], size: int) -> tuple[float, float]:
    """Apply every row in batches; return wall and client CPU seconds spent inside ``apply``."""
    spent = cpu = 0.0
    for events in batches(rows, size):
        now = events[-1].timestamp
        began, began_cpu = time.perf_counter(), time.process_time()
        state.apply(TENANT, events, now=now)
        spent += time.perf_counter() - began
        cpu += time.process_time() - began_cpu
    return spent, cpu


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.asarray(samples) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def read_latency(state: OnlineState, users: list[str], items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, call in (
        ("user_state", lambda k: state.user_state(TENANT, users[k], now=END)),
        ("trending_global_20", lambda k: state.trending(TENANT, 20, now=END)),
        ("trending_country_20", lambda k: state.trending(
            TENANT, 20, segment=f"country:{COUNTRIES[k % len(COUNTRIES)]}", now=END)),
        ("neighbours_20", lambda k: state.neighbours(TENANT, items[k], 20)),
    ):
        samples = []
        for k in range(len(users)):
            began = time.perf_counter()
            call(k)
            samples.append(time.perf_counter() - began)
        out[name] = percentiles(samples)
    return out


def click_then_read(state: OnlineState, users: list[str], items: list[str]) -> dict[str, float]:
    """One event applied then the user's state read back: the freshness path, per event."""
    samples = []
    for k, user in enumerate(users):
        event = Event(event_id=f"x{k}", type="click", user_id=user, item_id=items[k],
                      timestamp=END)
        began = time.perf_counter()
        state.apply(TENANT, [event], now=END)
        state.user_state(TENANT, user, now=END)
        samples.append(time.perf_counter() - began)
    return percentiles(samples)


def deep_size(obj: Any, seen: set[int]) -> int:
    """Bytes held by ``obj`` and everything it references, each object counted once."""
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset) or type(obj).__name__ == "deque":
        size += sum(deep_size(v, seen) for v in obj)
    elif isinstance(obj, np.ndarray):
        pass
    elif hasattr(obj, "__dict__"):
        size += deep_size(vars(obj), seen)
    return size


def bench_memory(rows: Sequence[Row], size: int, sample: tuple[list[str], list[str]]) -> dict:
    state = MemoryOnlineState()
    spent, cpu = replay(state, rows, size)
    active = state.active_users(TENANT, now=END)
    tenant = state._tenants[TENANT]
    user_bytes = deep_size(tenant.users, set())
    shared_bytes = deep_size((tenant.popularity, tenant.co), set())
    reads = read_latency(state, *sample)
    fresh = click_then_read(state, *sample)
    del state, tenant
    gc.collect()
    tracemalloc.start()
    traced = MemoryOnlineState()
    replay(traced, rows, size)
    gc.collect()
    total = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {
        **applied(len(rows), spent, cpu),
        "active_users": active,
        "bytes_per_active_user_user_state": user_bytes / active,
        "bytes_shared_counters": shared_bytes,
        "bytes_per_active_user_total_tracemalloc": total / active,
        "reads": reads,
        "click_then_read": fresh,
    }


def applied(events: int, spent: float, cpu: float) -> dict[str, float]:
    """Throughput and per-event cost of applying ``events`` in ``spent`` seconds (``cpu``:
    this process's CPU seconds)."""
    return {
        "events": events,
        "events_per_s": events / spent,
        "apply_us_per_event": spent / events * 1e6,
        "apply_client_cpu_us_per_event": cpu / events * 1e6,
    }


def bench_redis(rows: Sequence[Row], size: int, sample: tuple[list[str], list[str]],
                url: str) -> dict:
    import redis

    from personify.storage.online.redis import RedisOnlineState

    prefix = f"pbench:{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(url)
    before = int(client.info("memory")["used_memory"])
    state = RedisOnlineState.from_url(url, prefix)
    try:
        spent, cpu = replay(state, rows, size)
        after = int(client.info("memory")["used_memory"])
        active = state.active_users(TENANT, now=END)
        users = sample[0][:500]
        per_user = []
        for user in users:
            keys = [f"{prefix}:{TENANT}:{name}:{user}"
                    for name in ("log", "seen", "bought", "disliked", "vec")]
            per_user.append(sum(client.memory_usage(k) or 0 for k in keys))
        active_key = client.memory_usage(f"{prefix}:{TENANT}:active") or 0
        reads = read_latency(state, *sample)
        fresh = click_then_read(state, *sample)
    finally:
        state.close()
        for key in client.scan_iter(match=f"{prefix}:*", count=5000):
            client.unlink(key)
        client.close()
    return {
        **applied(len(rows), spent, cpu),
        "active_users": active,
        "bytes_per_active_user_memory_usage_sample": float(np.mean(per_user))
        + active_key / max(active, 1),
        "bytes_per_active_user_used_memory_delta": (after - before) / max(active, 1),
        "used_memory_delta_mb": (after - before) / 2**20,
        "reads": reads,
        "click_then_read": fresh,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=800_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--skip-redis", action="store_true")
    args = parser.parse_args()
    rng = random.Random(7)
    interactions, source = load_interactions(args.events, rng)
    rows = timeline(interactions, args.events, rng)
    users = sorted({r[1] for r in rows})
    items = sorted({r[2] for r in rows})
    sample = (rng.sample(users, min(args.samples, len(users))),
              rng.choices(items, k=min(args.samples, len(users))))
    print(f"{len(rows)} events, {len(users)} users, {len(items)} items from {source}", flush=True)
    metrics: dict[str, Any] = {"load_average_at_start": list(os.getloadavg())}
    metrics |= {"source": source, "events": len(rows), "users": len(users),
                               "items": len(items), "batch": args.batch}
    metrics["memory"] = bench_memory(rows, args.batch, sample)
    print("memory", metrics["memory"], flush=True)
    if not args.skip_redis:
        metrics["redis"] = bench_redis(rows, args.batch, sample, args.redis_url)
        print("redis", metrics["redis"], flush=True)
    print(write_results("online_state", metrics))


if __name__ == "__main__":
    main()
