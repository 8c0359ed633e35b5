"""Dashboard server time per page on the demo data (the bundled Online Retail sample loaded into
SQLite, a trained model, and some recommendation traffic with clicks), in-process through
Starlette's TestClient: what the server spends, without network or browser time.

Run: python benchmarks/dashboard.py [--repeats 7] [--db /tmp/personify_dashboard_bench.db]
Writes benchmarks/results/dashboard.json.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import write_results
from personify.api.app import create_app
from personify.dashboard import mount_dashboard
from personify.domain.events import Context, Event
from personify.jobs.sample_data import load_sample, sample_counts
from personify.jobs.training import TrainingConfig, train_tenant
from personify.serving.request import RecommendationRequest
from personify.settings import DEMO_ADMIN_KEY, Settings
from personify.storage.model_files import FileModelStore
from personify.storage.registry import open_stores

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TENANT = "default"


def traffic(app: Any, users: list[str], seed: int = 3) -> int:
    """Ask for recommendations for ``users`` (impressions logged) and click some of them."""
    rng = random.Random(seed)
    engine = app.state.runtime.engine
    clicks = []
    for user in users:
        result = engine.service.recommend(TENANT, RecommendationRequest(user_id=user, n=10))
        if result.items and rng.random() < 0.3:
            item = rng.choice(result.items[:5]).item_id
            clicks.append(Event(event_id=f"bench-click-{result.recommendation_id}", type="click",
                                user_id=user, item_id=item,
                                recommendation_id=result.recommendation_id,
                                timestamp=result_time(), context=Context(channel="web")))
    engine.impressions.close()  # flush the impression log
    app.state.runtime.ingestor.ingest(TENANT, clicks)
    return len(clicks)


def result_time() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--db", default=str(Path(tempfile.gettempdir())
                                            / "personify_dashboard_bench.db"))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="personify-dash-bench-"))
    stores = open_stores(f"sqlite:///{args.db}")
    started = time.perf_counter()
    load_sample(stores, TENANT)
    load_seconds = time.perf_counter() - started
    counts = sample_counts(stores, TENANT)
    train_tenant(stores.events, FileModelStore(folder / "models"), TENANT,
                 TrainingConfig(train_ranker=False))
    settings = Settings(demo=True, model_dir=str(folder / "models"), database_url="memory://")
    app = create_app(settings, stores=stores)
    app.state.runtime.start()  # the engine's warm-up, as the server's start-up runs it
    if not any(getattr(r, "path", "").startswith("/dashboard") for r in app.routes):
        mount_dashboard(app)
    users = [u.user_id for u in stores.users.list(TENANT, limit=300)]
    clicks = traffic(app, users)
    client = TestClient(app)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/dashboard/login").text)
    assert token is not None
    client.post("/dashboard/login", data={"key": DEMO_ADMIN_KEY, "csrf_token": token.group(1)})

    first_overview = timed(client, "/dashboard/")  # also starts the statistics build
    started = time.perf_counter()
    app.state.dashboard.stats.build_now(TENANT)
    stats_seconds = time.perf_counter() - started
    user, item = users[0], stores.catalog.list(TENANT, limit=1)[0].item_id
    pages = [
        "/dashboard/", "/dashboard/panels/overview", "/dashboard/users", "/dashboard/users?q=123",
        f"/dashboard/users/{user}", f"/dashboard/users/{user}/recommendations",
        f"/dashboard/users/{user}/recommendations?device=mobile&hour=20&country=Germany",
        "/dashboard/items", "/dashboard/items?q=BAG", f"/dashboard/items/{item}",
        f"/dashboard/items/{item}/similar", "/dashboard/models", "/dashboard/panels/evaluation",
        "/dashboard/experiments", f"/dashboard/messaging?user={user}", "/dashboard/settings",
        f"/dashboard/users/{user}/export",
    ]
    times: dict[str, dict[str, float]] = {}
    for path in pages:
        assert client.get(path).status_code == 200, path
        samples = [timed(client, path) for _ in range(args.repeats)]
        times[path] = {"median_ms": round(statistics.median(samples), 1),
                       "max_ms": round(max(samples), 1)}
        print(f"{times[path]['median_ms']:8.1f} ms  (max {times[path]['max_ms']:7.1f})  {path}")
    slowest = max(v["median_ms"] for v in times.values())
    metrics = {
        "data": {"users": counts.users, "items": counts.items,
                 "events": stores.events.count(TENANT), "test_clicks": clicks},
        "sample_load_seconds": round(load_seconds, 1),
        "statistics_build_seconds": round(stats_seconds, 2),
        "first_overview_ms_while_statistics_build": round(first_overview, 1),
        "pages": times,
        "slowest_page_median_ms": slowest,
        "repeats": args.repeats,
    }
    print(f"statistics build: {stats_seconds:.2f} s; slowest page median: {slowest} ms")
    print(write_results("dashboard", metrics))
    app.state.dashboard.close()
    app.state.runtime.engine.close()
    stores.close()


def timed(client: TestClient, path: str) -> float:
    started = time.perf_counter()
    client.get(path)
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
