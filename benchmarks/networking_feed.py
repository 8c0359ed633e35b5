"""Networking feed latency over the Quantum Computing Stack Exchange network demo, in process.

Run: python benchmarks/networking_feed.py [--requests 400]

Loads the network as ``personify demo --dataset network`` does (402 people, 3,288 interactions,
154 tag groups, 611 question posts) into a temporary SQLite database, trains the people model,
builds the runtime and asks ``FeedService.feed(n=20)`` (what ``GET /v1/users/{id}/feed``
answers, without HTTP) for people in random order; ``NetworkingService.people(n=20)`` (the
people section alone) for the same people in the same run is the baseline, so the ratio says
what the other four sections and the mixing cost. Sequential calls on one thread; the machine
is shared (the load average is recorded): wall-clock figures are inflated by other jobs, so the
thread's CPU time per feed is recorded next to them.

Contains data from Quantum Computing Stack Exchange (https://quantumcomputing.stackexchange.com),
CC BY-SA 3.0/4.0 (see the data set's README).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._report import write_results  # noqa: E402
from personify.data.stackexchange import ATTRIBUTION, DATASET_NAME  # noqa: E402
from personify.jobs.network_demo import load_network_demo  # noqa: E402
from personify.jobs.networking import train_networking  # noqa: E402
from personify.runtime.container import build_runtime  # noqa: E402
from personify.settings import Settings  # noqa: E402
from personify.storage.registry import open_stores  # noqa: E402


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50": round(float(np.percentile(a, 50)), 3),
            "p95": round(float(np.percentile(a, 95)), 3),
            "p99": round(float(np.percentile(a, 99)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--data", type=Path,
                        default=ROOT.parent / "shared" / "datasets" / DATASET_NAME)
    args = parser.parse_args()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/network.db"
        stores = open_stores(url)
        settings = Settings(database_url=url, model_dir=f"{folder}/models", demo=True)
        runtime = build_runtime(settings, stores=stores)
        try:
            counts = load_network_demo(stores, "default", runtime.ingestor, args.data)
            train_networking(stores, settings.model_dir, "default")
            people = [u.user_id for u in stores.users.list("default", limit=1000)]
            rng = random.Random(0)
            asked = [rng.choice(people) for _ in range(args.requests)]
            runtime.feed.feed("default", asked[0], 20)  # loads the network and signals once
            feed_ms, feed_cpu_ms, people_ms, sizes, sections = [], [], [], [], []
            for person in asked:
                start, cpu = time.perf_counter(), time.thread_time()
                answer = runtime.feed.feed("default", person, 20)
                feed_ms.append((time.perf_counter() - start) * 1000)
                feed_cpu_ms.append((time.thread_time() - cpu) * 1000)
                sizes.append(len(answer.entries))
                sections.append(sum(1 for v in answer.counts.values() if v))
                start = time.perf_counter()
                runtime.networking.people("default", person, 20)
                people_ms.append((time.perf_counter() - start) * 1000)
        finally:
            runtime.close()
            stores.close()
    feed, base = percentiles(feed_ms), percentiles(people_ms)
    metrics = {
        "feed_p50_ms": feed["p50"], "feed_p95_ms": feed["p95"], "feed_p99_ms": feed["p99"],
        "feed_cpu_p50_ms": percentiles(feed_cpu_ms)["p50"],
        "feed_cpu_p99_ms": percentiles(feed_cpu_ms)["p99"],
        "people_only_p50_ms": base["p50"], "people_only_p99_ms": base["p99"],
        "feed_to_people_p50_ratio": round(feed["p50"] / base["p50"], 2),
        "feed_entries_mean": round(float(np.mean(sizes)), 2),
        "feed_sections_mean": round(float(np.mean(sections)), 2),
        "requests": args.requests, "people": counts.people, "items": counts.items,
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }
    path = write_results("networking_feed", metrics, data=ATTRIBUTION)
    print(metrics)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
