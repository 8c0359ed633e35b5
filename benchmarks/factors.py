"""The ``factors`` source on Gowalla-scale serving data: ALS training time next to the
item-neighbour model, hit rate of the sources on held-out last interactions, the per-event cost
of folding a user's vector in at ingest (in-process and Redis) and the per-request cost of the
source. Writes ``benchmarks/results/factors.json``.

    python benchmarks/factors.py [--db /tmp/servwork/bench.db] [--factors 64] [--users 2000]
                                 [--redis-url redis://127.0.0.1:6379/0]

The database is the one ``benchmarks/serving.py --work DIR`` loads (810k Gowalla check-ins);
it is only read.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_results
from personify.data.events import interactions_from_events
from personify.data.interactions import Interactions
from personify.domain.events import Event
from personify.jobs.blend_training import holdout_last
from personify.jobs.training import TrainingConfig, fit_bundle, fit_factors
from personify.serving.bundle import ModelBundle
from personify.serving.catalog import CatalogSnapshot
from personify.serving.factor_source import FactorSource, UserVectorUpdater
from personify.serving.request import RecommendationRequest
from personify.serving.sources import CollaborativeSource, RequestScope
from personify.storage.online.memory import MemoryOnlineState
from personify.storage.online.port import OnlineState
from personify.storage.registry import open_stores

TENANT = "default"
K = 20
GRID = (0.0, 0.25, 0.5, 1.0, 2.0)


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def blas_single() -> AbstractContextManager[Any]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return nullcontext()
    return threadpool_limits(1, "blas")


def read(db: str, keep: set[str]) -> tuple[Interactions, dict[str, list[Event]]]:
    stores = open_stores(f"sqlite:///{db}")
    kept: dict[str, list[Event]] = {}

    def stream() -> Iterator[Event]:
        for event in stores.events.scan(TENANT):
            if event.subject in keep:
                kept.setdefault(event.subject, []).append(event)
            yield event

    data = interactions_from_events(stream())
    stores.close()
    return data, kept


def hit_rates(
    bundle: ModelBundle, reduced: Interactions, users: np.ndarray, held: np.ndarray
) -> dict[str, float]:
    """Hit rate @K of collaborative alone, factors alone and blends (both max-normalized)."""
    assert bundle.factors is not None
    matrix = reduced.matrix.tocsr()
    hits = {f"collaborative+{w}*factors": 0 for w in GRID} | {"factors": 0}
    n_items = len(bundle.items)
    for u, target in zip(users, held, strict=True):
        row = matrix.getrow(int(u))
        history = row.indices[row.data > 0]
        weights = row.data[row.data > 0].astype(np.float64)
        ids, scores, _ = bundle.history_scores(reduced.items.lookup(history), list(weights), 500)
        collab = np.zeros(n_items, np.float32)
        if ids:
            collab[bundle.items.indices(ids)] = scores / (scores.max() or 1.0)
        vector = bundle.factors.fold_in(history.astype(np.int64), weights)
        top, fs = bundle.factors.top(vector, 500, exclude=history.astype(np.int64))
        fac = np.zeros(n_items, np.float32)
        if top.size:
            fac[top] = fs / (fs.max() or 1.0)
        for w in GRID:
            total = collab + w * fac
            total[history] = -np.inf
            hits[f"collaborative+{w}*factors"] += int(target in np.argpartition(-total, K)[:K])
        f_only = fac.copy()
        f_only[history] = -np.inf
        hits["factors"] += int(target in np.argpartition(-f_only, K)[:K])
    return {name: round(h / len(users), 4) for name, h in hits.items()}


def percentiles(values: list[float]) -> dict[str, float]:
    arr = np.sort(np.asarray(values)) * 1000
    return {
        "mean_ms": round(float(arr.mean()), 4),
        "p50_ms": round(float(np.percentile(arr, 50)), 4),
        "p99_ms": round(float(np.percentile(arr, 99)), 4),
    }


def per_event(state: OnlineState, bundle: ModelBundle, users: list[str],
              items: list[str]) -> dict[str, Any]:
    """One click per user: cost of ``state.apply`` alone and of the fold-in after it."""
    updater = UserVectorUpdater(state, lambda t: bundle)
    apply_s, fold_s = [], []
    cpu_apply = cpu_fold = 0.0
    rng = np.random.default_rng(1)
    for user in users:
        click = [Event(event_id=f"b-{uuid.uuid4().hex}", type="click", user_id=user,
                       item_id=items[int(rng.integers(len(items)))],
                       timestamp=datetime.now(UTC))]
        _, w, c = timed(partial(state.apply, TENANT, click))
        apply_s.append(w)
        cpu_apply += c
        done, w, c = timed(partial(updater.update, TENANT, click))
        assert done == 1
        fold_s.append(w)
        cpu_fold += c
    return {
        "apply": percentiles(apply_s),
        "fold_in": percentiles(fold_s),
        "fold_in_cpu_ms_per_event": round(cpu_fold / len(users) * 1000, 4),
        "apply_cpu_ms_per_event": round(cpu_apply / len(users) * 1000, 4),
    }


def per_request(state: OnlineState, bundle: ModelBundle, catalog: CatalogSnapshot,
                users: list[str]) -> dict[str, Any]:
    """``FactorSource.candidates(scope, 100)`` with the stored vector and folded on the fly
    (another factor version: no stored vector), and the collaborative source for scale."""
    assert bundle.factors is not None
    other = replace(bundle, factors=replace(bundle.factors, version="not-stored"))
    out: dict[str, Any] = {}
    for name, source, served, explain in (
        ("factors_stored_vector", FactorSource(), bundle, False),
        ("factors_folded_on_the_fly", FactorSource(), other, False),
        ("factors_stored_vector_explained", FactorSource(), bundle, True),
        ("factors_folded_on_the_fly_explained", FactorSource(), other, True),
        ("collaborative", CollaborativeSource(), bundle, False),
    ):
        samples: list[float] = []
        cpu = 0.0
        request = RecommendationRequest(user_id="x", n=20, explain=explain)
        for user in users:
            now = datetime.now(UTC)
            scope = RequestScope(
                TENANT, request, user, None, state.user_state(TENANT, user, now=now), served,
                state, catalog, now, True,
            )
            found, w, c = timed(partial(source.candidates, scope, 100))
            assert found
            samples.append(w)
            cpu += c
        out[name] = percentiles(samples) | {"cpu_ms": round(cpu / len(users) * 1000, 4)}
    return out


def fit_and_rate(
    data: Interactions, k: int, max_users: int
) -> tuple[ModelBundle, dict[str, Any]]:
    """Fit the bundle and the factors on all but each held-out user's last interaction, time
    both, and measure the hit rates of the sources on the held-out interactions."""
    users_h, held, keep = holdout_last(data, max_users=max_users, seed=0)
    reduced = Interactions.from_arrays(
        data.users.lookup(data.user_idx[keep]), data.items.lookup(data.item_idx[keep]),
        data.weights[keep], None if data.timestamps is None else data.timestamps[keep],
        users=data.users, items=data.items,
    )
    config = TrainingConfig(factors=k)
    load0 = os.getloadavg()
    bundle, fit_w, fit_c = timed(lambda: fit_bundle(reduced, replace(config, factors=None), "b"))
    print(f"rp3beta bundle: {fit_w:.1f}s wall, {fit_c:.1f}s CPU", flush=True)
    factors, als_w, als_c = timed(lambda: fit_factors(reduced, config, "b"))
    print(f"ALS k={k}: {als_w:.1f}s wall, {als_c:.1f}s CPU", flush=True)
    bundle.factors = factors
    out: dict[str, Any] = {"training": {
        "bundle_without_factors_s": round(fit_w, 1),
        "bundle_without_factors_cpu_s": round(fit_c, 1),
        "als_s": round(als_w, 1), "als_cpu_s": round(als_c, 1),
        "als_share_of_bundle_fit": round(als_w / fit_w, 3),
        "item_factors_mb": round(factors.item_factors.nbytes / 1e6, 1),
        "loadavg_before": load0, "loadavg_after": os.getloadavg(),
    }}
    rates, _, _ = timed(lambda: hit_rates(bundle, reduced, users_h, held))
    out[f"hit_rate@{K}"] = rates | {"held_out_users": int(users_h.size)}
    print(f"hit rates: {rates}", flush=True)
    return bundle, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="/tmp/servwork/bench.db")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--redis-url", default=os.environ.get("PERSONIFY_BENCH_REDIS_URL"))
    parser.add_argument("--cache", type=Path, help="fitted bundle pickle, reused if present")
    args = parser.parse_args()
    sample = {f"u{u}" for u in range(0, 30_000, max(1, 30_000 // args.users))}
    (data, histories), read_s, _ = timed(lambda: read(args.db, sample))
    print(f"read {len(data.item_idx):,} interactions in {read_s:.1f}s", flush=True)
    results: dict[str, Any] = {"interactions": len(data.item_idx), "users": data.n_users,
                               "items": data.n_items, "factors": args.factors}

    if args.cache and args.cache.exists():  # the fitted bundle and its figures, from a run
        with open(args.cache, "rb") as fh:
            bundle, fitted = pickle.load(fh)
        results |= fitted | {"training_and_hit_rates_from": str(args.cache)}
    else:
        bundle, fitted = fit_and_rate(data, args.factors, args.users)
        results |= fitted
        if args.cache:
            with open(args.cache, "wb") as fh:
                pickle.dump((bundle, fitted), fh, pickle.HIGHEST_PROTOCOL)
    assert bundle.factors is not None
    factors = bundle.factors

    bundle.factors = replace(factors, version="f")
    stores = open_stores(f"sqlite:///{args.db}")
    catalog = CatalogSnapshot(list(stores.catalog.scan(TENANT)))
    stores.close()
    users = sorted(histories)
    items = list(data.items.ids)
    states: list[tuple[str, OnlineState]] = [("inprocess", MemoryOnlineState())]
    if args.redis_url:
        from personify.storage.online.redis import RedisOnlineState

        states.append(("redis", RedisOnlineState.from_url(
            args.redis_url, f"bench-factors:{uuid.uuid4().hex[:8]}")))
    for name, state in states:
        for user in users:
            state.apply(TENANT, histories[user])
        for blas, ctx in (("blas_default_threads", nullcontext), ("blas_1_thread", blas_single)):
            with ctx():
                load = os.getloadavg()
                results[f"ingest_{name}_{blas}"] = per_event(state, bundle, users, items) | {
                    "loadavg": load}
                results[f"request_{name}_{blas}"] = per_request(state, bundle, catalog, users) | {
                    "loadavg": os.getloadavg()}
            print(name, blas, results[f"ingest_{name}_{blas}"], flush=True)
            print(name, blas, results[f"request_{name}_{blas}"], flush=True)
        if name == "redis":
            client, prefix = state.client, state.prefix  # type: ignore[attr-defined]
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                client.delete(key)
        state.close()
    path = write_results("factors", results, load_average=os.getloadavg())
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
