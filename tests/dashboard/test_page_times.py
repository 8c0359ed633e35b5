"""Server time of every page and panel on the test shop, printed (``pytest -s``) rather than
asserted: timings depend on the machine. The demo-data figures come from
``benchmarks/dashboard.py``."""

from __future__ import annotations

import statistics
import time

from fastapi import FastAPI

from .conftest import TestClient
from .shop import TENANT

PAGES = [
    "/dashboard/", "/dashboard/panels/overview", "/dashboard/users", "/dashboard/users/u01",
    "/dashboard/users/u01/recommendations",
    "/dashboard/users/u01/recommendations?device=mobile&hour=20&country=DE",
    "/dashboard/items", "/dashboard/items/i01", "/dashboard/items/i01/similar",
    "/dashboard/models", "/dashboard/panels/evaluation", "/dashboard/experiments",
    "/dashboard/messaging", "/dashboard/settings",
]


def measure(client: TestClient, paths: list[str], repeats: int = 5) -> dict[str, float]:
    """Median milliseconds per path (after one warm-up request)."""
    out = {}
    for path in paths:
        assert client.get(path).status_code == 200, path
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            client.get(path)
            samples.append((time.perf_counter() - started) * 1000)
        out[path] = statistics.median(samples)
    return out


def test_print_page_times(app: FastAPI, client: TestClient) -> None:
    app.state.dashboard.stats.build_now(TENANT)
    times = measure(client, PAGES)
    print("\ndashboard server time per page (median of 5, ms):")
    for path, ms in times.items():
        print(f"  {ms:7.1f}  {path}")
    assert set(times) == set(PAGES)
