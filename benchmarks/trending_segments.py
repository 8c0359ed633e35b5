"""Trending per context segment vs global trending, replayed on Online Retail's timestamps.

The cleaned purchase log is replayed in time order into the in-process online state (the
product's ``MemoryOnlineState``, whose default segments count every event also in its country
and part of the day). For a seeded sample of purchases of the last 30 days, just before the
purchase is applied, the ``trending`` source is asked for 20 items in that purchase's context
(the customer's country, ``local_time`` = the invoice time: UK shop hours) and, in the same
run, without context (the global ranking, what the source answered before segments). Hit
rate@20: the purchased product is among the 20. The customer's own earlier purchases are not
excluded (trending is not personal).

    nice -n 10 python benchmarks/trending_segments.py [--sample 3000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_results
from benchmarks.online_retail import SOURCE
from personify.data.online_retail import load_purchase_log
from personify.domain.events import Context, Event, Location
from personify.serving.catalog import CatalogSnapshot
from personify.serving.request import RecommendationRequest
from personify.serving.sources import RequestScope, TrendingSource
from personify.storage.online.memory import MemoryOnlineState

K = 20
TENANT = "default"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=3000, help="test purchases asked")
    args = parser.parse_args()
    started = time.perf_counter()
    log = load_purchase_log(SOURCE, drop_non_products=True)
    order = np.argsort(log.timestamp, kind="stable")
    cutoff = float(log.timestamp.max()) - 30 * 86_400
    test_rows = order[log.timestamp[order] >= cutoff]
    rng = np.random.default_rng(0)
    asked = set(rng.choice(test_rows, size=min(args.sample, len(test_rows)),
                           replace=False).tolist())
    state = MemoryOnlineState()
    source = TrendingSource()
    catalog = CatalogSnapshot()
    hits = {"segments": 0, "global": 0}
    pending: list[Event] = []

    def event(j: int) -> Event:
        when = datetime.fromtimestamp(float(log.timestamp[j]), UTC)
        return Event.model_construct(
            event_id=f"e{j}", type="purchase", user_id=str(log.customer[j]),
            item_id=str(log.stock_code[j]), timestamp=when, properties={},
            context=Context(location=Location(country=str(log.country[j])),
                            local_time=when.replace(tzinfo=None)))

    for j in order.tolist():
        if j in asked:
            if pending:
                state.apply(TENANT, pending)
                pending = []
            e = event(j)
            for name, context in (("segments", e.context), ("global", Context())):
                request = RecommendationRequest(n=K, context=context)
                scope = RequestScope(TENANT, request, None, None, None, None, state, catalog,
                                     e.timestamp, False, [])
                top = [c.item_id for c in source.candidates(scope, K)]
                hits[name] += e.item_id in top[:K]
        pending.append(event(j))
        if len(pending) >= 20_000:
            state.apply(TENANT, pending)
            pending = []
    n = len(asked)
    metrics: dict[str, Any] = {
        "purchases_asked": n,
        f"hit_rate@{K}_country_and_daypart": round(hits["segments"] / n, 5),
        f"hit_rate@{K}_global": round(hits["global"] / n, 5),
        "ratio_segments_to_global": round(hits["segments"] / max(hits["global"], 1), 4),
        "segments": list(state.config.context_segments),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(metrics, flush=True)
    print(f"wrote {write_results('trending_segments', metrics)}")


if __name__ == "__main__":
    main()
