"""Latency of the experiment routes on a SQLite file: assignment (with the sticky alias),
exposure logging, a bandit decision (LinUCB, 20 actions, slate of 3) and reward ingestion.

Run: python benchmarks/experiments_api.py [--n 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._report import write_results  # noqa: E402
from personify.api import create_app  # noqa: E402
from personify.domain.keys import Scope  # noqa: E402
from personify.settings import Settings  # noqa: E402
from personify.storage.registry import open_stores  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def _timed(n: int, call: Callable[[int], Any]) -> dict[str, float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        stores = open_stores(url)
        secret = stores.keys.create("default", "bench", [Scope.ADMIN])[1]
        app = create_app(Settings(database_url=url, demo=False), stores=stores)
        h = {"Authorization": f"Bearer {secret}"}
        with TestClient(app) as client:
            client.post("/v1/experiments", headers=h, json={
                "name": "e", "variants": [{"name": "a"}, {"name": "b"}],
                "primary_metric": {"name": "ctr", "kind": "ratio"}, "sequential": True})
            client.post("/v1/experiments/e/start", headers=h)
            client.post("/v1/decisions/offers", headers=h, json={"policy": "linucb"})
            actions = [{"id": f"offer-{i}"} for i in range(20)]
            ids: list[str] = []

            def assign(i: int) -> None:
                client.get("/v1/assignments", headers=h,
                           params={"user_id": f"u{i}", "anonymous_id": f"a{i}"})

            def expose(i: int) -> None:
                client.post("/v1/exposures", headers=h,
                            json={"experiment": "e", "anonymous_id": f"a{i}"})

            def decide(i: int) -> None:
                got = client.post("/v1/decisions", headers=h, json={
                    "point": "offers", "context": {"device": "mobile", "hour": i % 24},
                    "actions": actions, "k": 3}).json()
                ids.append(got["decision_id"])
                ids.append(got["actions"][0]["id"])

            def reward(i: int) -> None:
                client.post("/v1/events", headers=h, json={
                    "event_id": f"r{i}", "type": "click", "user_id": "u", "item_id": ids[2 * i + 1],
                    "recommendation_id": ids[2 * i], "timestamp": datetime.now(UTC).isoformat()})

            metrics = {
                "assignment_new_user": _timed(args.n, assign),
                "exposure": _timed(args.n, expose),
                "decision_linucb_20_actions_k3": _timed(args.n, decide),
                "reward_event_with_policy_update": _timed(args.n, reward),
                "calls_each": args.n,
                "database": "sqlite file",
            }
        stores.close()
    path = write_results("experiments_api", metrics)
    for name, value in metrics.items():
        print(f"{name:36} {value}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
