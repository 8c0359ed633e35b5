"""Gowalla (NGCF / LightGCN split) benchmark: evaluator check, every model, the best config.

Phases (run one heavy phase at a time; each merges its figures into results/gowalla.json)::

    python benchmarks/gowalla.py ease-check      # EASE l2=80 must give 0.1765 / 0.1467
    python benchmarks/gowalla.py models          # every model: quality, fit time, memory, speed
    python benchmarks/gowalla.py best            # tune on a validation split, then test once
    python benchmarks/gowalla.py bspm            # BSPM: 8-point validation grid, then test once
    python benchmarks/gowalla.py bspm-served     # BSPM through truncated neighbour rows
    python benchmarks/gowalla.py served-default  # `personify train` default, served by the chain

Protocol: ../shared/docs/BENCHMARKS.md (full ranking, train masked, all 29,858 users).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import RESULTS_DIR, write_results
from personify.algorithms import create_model
from personify.data.gowalla import load_gowalla
from personify.evaluation._resources import peak_rss_mb, reset_peak
from personify.evaluation.protocol import evaluate

DATASET = Path(
    os.environ.get(
        "PERSONIFY_DATASETS_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets")
    )
) / "gowalla_lightgcn"


def merge(metrics: dict[str, Any], **extra: Any) -> None:
    """Merge ``metrics`` into results/gowalla.json (phases run separately)."""
    path = RESULTS_DIR / "gowalla.json"
    old: dict[str, Any] = {}
    body: dict[str, Any] = {}
    if path.exists():
        body = json.loads(path.read_text(encoding="utf-8"))
        old = body.get("metrics", {})
    old.update(metrics)
    keep = {k: v for k, v in body.items()
            if k not in ("name", "metrics", "hardware", "date", "command")}
    keep.update(extra)
    write_results("gowalla", old, **keep)


def run_model(name: str, params: dict[str, Any], train: Any, test: Any) -> dict[str, Any]:
    """Fit and evaluate one model, measuring fit time, peak memory and scoring speed."""
    gc.collect()
    reset_peak()
    model = create_model(name, **params)
    start = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - start
    print(f"{name}: fitted in {fit_seconds:.1f}s", flush=True)
    result = evaluate(model, train, test, (10, 20), batch_size=1024)
    out = {
        "params": params,
        "recall@20": round(result["recall@20"], 5),
        "ndcg@20": round(result["ndcg@20"], 5),
        "recall@10": round(result["recall@10"], 5),
        "ndcg@10": round(result["ndcg@10"], 5),
        "coverage@20": round(result["coverage@20"], 4),
        "fit_seconds": round(fit_seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "users_per_second": round(result["users_per_second"], 1),
        "eval_seconds": round(result["eval_seconds"], 1),
    }
    print(name, json.dumps(out), flush=True)
    del model
    gc.collect()
    return out


def ease_check() -> None:
    train, test = load_gowalla(DATASET)
    out = run_model(
        "ease", {"l2": 80.0, "dtype": "float32", "memory_budget_gb": 16.0}, train, test
    )
    merge(
        {
            "ease_lambda80_recall@20": out["recall@20"],
            "ease_lambda80_ndcg@20": out["ndcg@20"],
            "ease_lambda80": out,
        }
    )


MODELS: list[tuple[str, str, dict[str, Any]]] = [
    ("popularity", "popularity", {}),
    ("random", "random", {}),
    ("itemknn", "itemknn", {"k": 100, "shrink": 10.0}),
    ("rp3beta", "rp3beta", {"k": 200, "alpha": 0.8, "beta": 0.3}),
    ("als", "als", {"factors": 128, "regularization": 0.05, "alpha": 10.0, "iterations": 15}),
    ("gfcf", "gfcf", {"alpha": 0.3, "n_factors": 256}),
]
"""Untuned, literature-style defaults; the tuned configuration is the ``best`` phase."""


def models(only: list[str] | None) -> None:
    train, test = load_gowalla(DATASET)
    for label, name, params in MODELS:
        if only and label not in only:
            continue
        merge({label: run_model(name, params, train, test)})


BLEND_COMPONENTS: list[tuple[str, str, dict[str, Any]]] = [
    ("gfcf", "gfcf", {"alpha": 0.3, "n_factors": 256}),
    ("ideal_low_pass", "gfcf", {"alpha": 1.0, "linear_weight": 0.0, "n_factors": 256}),
    ("rp3beta", "rp3beta", {"k": 200, "alpha": 0.8, "beta": 0.3}),
    ("itemknn", "itemknn", {"k": 100, "shrink": 10.0}),
]
"""GF-CF (linear filter + 0.3 x ideal low-pass, as published) with extra low-pass weight and two
item-neighbour models. A first attempt blended the bare linear filter instead of GF-CF and
chose weights that scored 0.1834 / 0.1490 on test, below GF-CF alone (see
docs/benchmarks/gowalla.md)."""


def weight_grid() -> list[tuple[float, ...]]:
    """GF-CF fixed at 1; the other components on a small grid (0 everywhere = GF-CF alone)."""
    grid: list[tuple[float, ...]] = []
    for ideal in (0.0, 0.1, 0.2):
        for rp3 in (0.0, 0.1, 0.2, 0.4):
            for knn in (0.0, 0.1, 0.2):
                grid.append((1.0, ideal, rp3, knn))
    return grid


def best() -> None:
    """Choose blend weights on a validation split of train, refit on train, test once."""
    from personify.data.splits import validation_split
    from personify.evaluation.tuning import blend_weight_search

    train, test = load_gowalla(DATASET)
    fit_part, valid = validation_split(train, 0.2, seed=0)
    start = time.perf_counter()
    fitted = []
    for label, name, params in BLEND_COMPONENTS:
        fitted.append(create_model(name, **params).fit(fit_part))
        print(f"validation fit {label}: {time.perf_counter() - start:.0f}s", flush=True)
    rows = blend_weight_search(fitted, fit_part, valid, weight_grid(), k=20,
                               progress=lambda d, t: print(f"  grid {d}/{t}", flush=True))
    del fitted
    gc.collect()
    chosen = rows[0]
    print("validation best", json.dumps(chosen), flush=True)
    params = {
        "components": [(name, p) for _, name, p in BLEND_COMPONENTS],
        "weights": chosen["weights"],
        "normalize": "max",
    }
    out = run_model("blend", params, train, test)
    out["validation"] = {"ndcg@20": round(chosen["ndcg@20"], 5),
                         "recall@20": round(chosen["recall@20"], 5),
                         "grid_top5": rows[:5], "grid_size": len(rows),
                         "component_labels": [label for label, _, _ in BLEND_COMPONENTS]}
    merge({"best": out, "best_recall@20": out["recall@20"], "best_ndcg@20": out["ndcg@20"]})


BSPM_GRID: list[tuple[float, float, int]] = [
    (2.5, 0.2, 448), (2.0, 0.2, 448), (3.0, 0.2, 448), (2.5, 0.1, 448),
    (2.5, 0.3, 448), (3.0, 0.3, 448), (2.5, 0.2, 576), (3.0, 0.2, 576),
]
"""(T_s, idl_beta, factor_dim) around the authors' Gowalla command (rk4, K_s 1, T_s 2.5, early
merge, idl_beta 0.2, factor_dim 448); T_b = K_b = 1."""


def _rk4_coefficients(t_s: float) -> list[float]:
    """One RK4 step of the linear ``ds/dt = -s P`` multiplies by ``sum_j (-t_s P)^j / j!``."""
    import math

    return [(-t_s) ** j / math.factorial(j) for j in range(5)]


def bspm_validation_grid(model: Any, fit_part: Any, valid: Any,
                         grid: list[tuple[float, float, int]], k: int = 20,
                         batch_size: int = 1024) -> list[dict[str, Any]]:
    """NDCG@k / Recall@k on ``valid`` for every grid point, with one scoring pass.

    ``model`` is a BSPM fitted on ``fit_part`` with ``factor_dim >= max(grid dims)``; smaller
    ranks use the leading singular vectors. Per batch the blurred signal ``b`` and the low-pass
    ``l_k`` are propagated through ``P~`` four times and every (T_s, idl_beta, k) is the
    combination ``sum_j c_j(T_s) (b P~^j + idl_beta l_k P~^j)`` (exactly BSPM-EM with one RK4
    step); the first batch is checked against ``model.score`` at the first grid point."""
    import numpy as np
    import scipy.sparse as sp

    from personify.algorithms.base import top_n
    from personify.evaluation import metrics

    valid_m = sp.csr_matrix((sp.csr_matrix(valid.matrix) > 0).astype(np.float32))
    train_m = sp.csr_matrix(fit_part.matrix)
    n_rel_all = np.diff(valid_m.indptr)
    users = np.flatnonzero(n_rel_all > 0)
    dims = sorted({dim for _, _, dim in grid})
    ndcg_sum = np.zeros(len(grid))
    recall_sum = np.zeros(len(grid))
    start = time.perf_counter()
    for lo in range(0, len(users), batch_size):
        batch = users[lo : lo + batch_size]
        rows = model.X_[batch]
        x_t = np.ascontiguousarray(rows.T.toarray(), dtype=np.float32)
        powers = [model.blur(x_t)]
        del x_t
        for _ in range(4):
            powers.append(model.apply_filter(powers[-1]))
        low: dict[int, list[Any]] = {}
        for dim in dims:
            low[dim] = [model.ideal_low_pass(rows, dim)]
            for _ in range(4):
                low[dim].append(model.apply_filter(low[dim][-1]))
        exclude = train_m[batch]
        relevant = valid_m[batch]
        n_rel = n_rel_all[batch]
        for g, (t_s, beta, dim) in enumerate(grid):
            out = np.zeros_like(powers[0])
            for c, bp, lp in zip(_rk4_coefficients(t_s), powers, low[dim], strict=True):
                out += np.float32(c) * bp + np.float32(c * beta) * lp
            scores = np.ascontiguousarray(out.T)
            del out
            if lo == 0 and g == 0:
                from personify.algorithms.bspm import BSPM

                check = BSPM(factor_dim=dim, idl_beta=beta, T_s=t_s)
                check.__dict__.update({key: val for key, val in model.__dict__.items()
                                       if key.endswith("_")})
                check.vt_ = model.vt_[:dim]
                ref = check.score(batch)
                err = float(np.abs(ref - scores).max() / max(np.abs(ref).max(), 1e-12))
                print(f"  grid reconstruction vs model.score: max rel. error {err:.2e}",
                      flush=True)
                if err > 1e-3:
                    raise RuntimeError(f"grid reconstruction differs from BSPM.score ({err})")
            ids, _ = top_n(scores, k, exclude=exclude)
            hits = metrics.hit_matrix(ids, relevant)
            ndcg_sum[g] += metrics.ndcg(hits, n_rel, k).sum()
            recall_sum[g] += metrics.recall(hits, n_rel, k).sum()
        print(f"  grid {min(lo + batch_size, len(users))}/{len(users)} "
              f"{time.perf_counter() - start:.0f}s", flush=True)
    n = max(len(users), 1)
    rows_out = [{"T_s": t_s, "idl_beta": beta, "factor_dim": dim,
                 f"ndcg@{k}": round(float(ndcg_sum[g] / n), 5),
                 f"recall@{k}": round(float(recall_sum[g] / n), 5)}
                for g, (t_s, beta, dim) in enumerate(grid)]
    return sorted(rows_out, key=lambda row: -row[f"ndcg@{k}"])


def bspm() -> None:
    """BSPM: choose (T_s, idl_beta, factor_dim) on a validation split of train, refit on the
    whole train, evaluate once on test; merge, and replace ``best`` only if it is better."""
    from personify.data.splits import validation_split

    train, test = load_gowalla(DATASET)
    fit_part, valid = validation_split(train, 0.2, seed=0)
    load_start = os.getloadavg()
    start = time.perf_counter()
    cpu_start = time.process_time()
    max_dim = max(dim for _, _, dim in BSPM_GRID)
    model = create_model("bspm", factor_dim=max_dim).fit(fit_part)
    print(f"validation fit (factor_dim {max_dim}): {time.perf_counter() - start:.0f}s",
          flush=True)
    rows = bspm_validation_grid(model, fit_part, valid, BSPM_GRID)
    grid_seconds = time.perf_counter() - start
    grid_cpu = time.process_time() - cpu_start
    del model
    gc.collect()
    chosen = rows[0]
    print("validation grid", json.dumps(rows), flush=True)
    params = {"factor_dim": chosen["factor_dim"], "idl_beta": chosen["idl_beta"],
              "T_b": 1.0, "K_b": 1, "T_s": chosen["T_s"], "K_s": 1, "solver": "rk4",
              "merge": "early"}
    cpu_test = time.process_time()
    out = run_model("bspm", params, train, test)
    out["cpu_seconds_fit_and_eval"] = round(time.process_time() - cpu_test, 1)
    out["validation"] = {"split": "validation_split(train, 0.2, seed=0)",
                         "chosen": chosen, "grid": rows, "grid_size": len(rows),
                         "seconds": round(grid_seconds, 1), "cpu_seconds": round(grid_cpu, 1),
                         "note": "ranks below the fitted factor_dim use its leading singular "
                                 "vectors"}
    out["loadavg_start"] = [round(v, 2) for v in load_start]
    out["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    metrics_out: dict[str, Any] = {"bspm": out}
    path = RESULTS_DIR / "gowalla.json"
    previous = json.loads(path.read_text(encoding="utf-8")).get("metrics", {}) \
        if path.exists() else {}
    if out["ndcg@20"] > previous.get("best_ndcg@20", 0.0) and \
            out["recall@20"] > previous.get("best_recall@20", 0.0):
        metrics_out.update({"best": {**out, "note": "best is the BSPM run (phase bspm)"},
                            "best_recall@20": out["recall@20"],
                            "best_ndcg@20": out["ndcg@20"]})
        if "best" in previous:
            metrics_out["previous_best_blend"] = previous["best"]
    merge(metrics_out)


def bspm_served(k: int = 200) -> None:
    """What the service would keep of the tuned BSPM: ``personify train --model bspm`` stores the
    top-``k`` of each item's operator row (``neighbour_matrix`` -> ``BSPM.similar_items``), and
    the chain folds a history through those rows. Scores users exactly that way (train rows
    through the truncated rows) and evaluates once on test."""
    import numpy as np
    import scipy.sparse as sp

    from personify.algorithms.neighbours import ItemNeighbourModel
    from personify.jobs.training import neighbour_matrix

    train, test = load_gowalla(DATASET)
    path = RESULTS_DIR / "gowalla.json"
    chosen = json.loads(path.read_text(encoding="utf-8"))["metrics"]["bspm"]["params"]
    gc.collect()
    reset_peak()
    start = time.perf_counter()
    model = create_model("bspm", **chosen).fit(train)
    rows = neighbour_matrix(model, train.n_items, k)
    build = time.perf_counter() - start
    del model
    gc.collect()

    class Served(ItemNeighbourModel):
        name = "bspm-served"

        def __init__(self) -> None:
            self.k, self.binary = k, True

        def fit(self, data: Any) -> Served:  # already built above
            return self

    binary = sp.csr_matrix(sp.csr_matrix(train.matrix) > 0, dtype=np.float32)
    served = Served()._fitted(rows, binary)
    result = evaluate(served, train, test, (20,), batch_size=1024)
    out = {"params": chosen, "k": k, "recall@20": round(result["recall@20"], 5),
           "ndcg@20": round(result["ndcg@20"], 5), "build_seconds": round(build, 1),
           "peak_rss_mb": round(peak_rss_mb(), 1), "loadavg_end": os.getloadavg()}
    print("bspm served", json.dumps(out), flush=True)
    merge({"bspm_served": out})


SERVED_VARIANTS: list[tuple[str, list[str] | None, dict[str, float]]] = [
    ("default", None, {}),
    ("collaborative", ["collaborative"], {}),
    ("collaborative+factors", ["collaborative", "factors"], {}),
    ("collaborative+factors+popular", ["collaborative", "factors", "popular"], {}),
    ("collaborative+factors+trending", ["collaborative", "factors", "trending"], {}),
    ("default-repeat", None, {}),
    ("what-if-trending-as-popular", None, {"trending": -1.0}),
]
"""(label, ``request.sources``, source weights overridden for that pass only) per pass: None =
the service's default order (every built-in source); a weight of -1 stands for the learned
``popular`` weight. The default runs again after the restricted passes: the first pass through
the chain pays warm-up. The what-if pass is not the shipped configuration: it shows what the
hand-set ``trending`` weight costs."""


def _gowalla_rows(path: Path, max_users: int | None) -> list[tuple[int, list[int]]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = [int(x) for x in line.split()]
            if len(parts) >= 2 and (max_users is None or parts[0] < max_users):
                rows.append((parts[0], parts[1:]))
    return rows


def _ranked_metrics(ranked: Any, test: Any, users: Any) -> dict[str, float]:
    """Recall@20 / NDCG@20 (personify.evaluation.metrics) of ``ranked`` (users x 20 item ids,
    -1 padded) against the test rows of ``users``."""
    import numpy as np

    from personify.evaluation import metrics

    relevant = test[users]
    n_rel = np.diff(relevant.indptr)
    hits = metrics.hit_matrix(ranked, relevant)
    return {"recall@20": round(float(metrics.recall(hits, n_rel, 20).mean()), 5),
            "ndcg@20": round(float(metrics.ndcg(hits, n_rel, 20).mean()), 5)}


def served_default(max_users: int | None, variants: list[str] | None) -> None:
    """What the service serves with the default ``personify train`` configuration: train a
    bundle with ``train_bundle(events, TrainingConfig())`` from view events of the train split,
    then ask a real ``RecommendationService`` (in-memory online state holding the same events)
    for 20 items per test user, and score the answers with the evaluation's metrics.

    Synthetic timestamps: every user's events one second apart, in file order, all starting
    six hours before the request clock, so the request's default exclusion of items seen in
    the last day masks the whole train history (the protocol's full ranking) and no visit is
    still open (no session)."""
    import resource
    from datetime import UTC, datetime, timedelta

    import numpy as np
    import scipy.sparse as sp

    from personify.domain.events import Event
    from personify.domain.items import Item
    from personify.jobs.training import TrainingConfig, train_bundle
    from personify.serving.catalog import CatalogSnapshot
    from personify.serving.chain import RecommendationService
    from personify.serving.request import RecommendationRequest
    from personify.storage.online.memory import MemoryOnlineState

    tenant = "gowalla"
    now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    start_at = now - timedelta(hours=6)
    train_rows = _gowalla_rows(DATASET / "train.txt", max_users)
    test_rows = _gowalla_rows(DATASET / "test.txt", max_users)
    n_items = 1 + max(max(items) for _, items in train_rows + test_rows)
    started = time.perf_counter()
    events = [
        Event(event_id=f"e{u}-{j}", type="view", user_id=f"u{u}", item_id=f"p{item}",
              timestamp=start_at + timedelta(seconds=j))
        for u, items in train_rows for j, item in enumerate(items)
    ]
    events_seconds = time.perf_counter() - started
    print(f"{len(events)} events built in {events_seconds:.1f}s", flush=True)

    gc.collect()
    load_fit = os.getloadavg()
    cpu = time.process_time()
    started = time.perf_counter()
    bundle, manifest = train_bundle(events, TrainingConfig())
    fit_seconds = time.perf_counter() - started
    fit_cpu = time.process_time() - cpu
    load_fit_end = os.getloadavg()
    rss_fit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"train_bundle: {fit_seconds:.0f}s, weights {bundle.source_weights}", flush=True)
    assert bundle.user_lists is not None, "the default configuration builds per-person lists"

    state = MemoryOnlineState()
    started = time.perf_counter()
    for lo in range(0, len(events), 50_000):
        state.apply(tenant, events[lo:lo + 50_000], now=start_at + timedelta(hours=1))
    state_seconds = time.perf_counter() - started
    print(f"online state filled in {state_seconds:.0f}s", flush=True)
    del events
    gc.collect()
    catalog = CatalogSnapshot(Item(item_id=f"p{i}") for i in range(n_items))
    service = RecommendationService(bundles=lambda t: bundle, catalogs=lambda t: catalog,
                                    state=state, log_impression=None, clock=lambda: now)

    rows, cols = [], []
    for u, items in test_rows:
        rows += [u] * len(items)
        cols += items
    n_users = 1 + max(u for u, _ in train_rows + test_rows)
    test = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    train_sets = {u: set(items) for u, items in train_rows}
    users = np.asarray([u for u, _ in test_rows], dtype=np.int64)

    def item_index(item_id: str) -> int:
        return int(item_id[1:])

    lists = np.full((len(users), 20), -1, dtype=np.int64)
    listed = 0
    for r, u in enumerate(users):
        row = bundle.user_lists.row(f"u{u}")
        if row is None:
            continue
        listed += 1
        top = [item_index(bundle.items.ids[int(i)]) for i in row[0][:20]]
        lists[r, :len(top)] = top
    out: dict[str, Any] = {
        "protocol": "train split as one view event per (user, item), one second apart per user "
                    "in file order; trained with train_bundle(events, TrainingConfig()); every "
                    "test user asked RecommendationRequest(user_id, n=20) of an in-process "
                    "RecommendationService (MemoryOnlineState holding the train events, catalogue "
                    "p0..pN without categories, no impression log); the request's default "
                    "seen_days=1 excludes the whole train history",
        "users": len(users),
        "events": int(sum(len(items) for _, items in train_rows)),
        "events_build_seconds": round(events_seconds, 1),
        "fit_seconds": round(fit_seconds, 1),
        "fit_cpu_seconds": round(fit_cpu, 1),
        "fit_loadavg_start": [round(v, 2) for v in load_fit],
        "fit_loadavg_end": [round(v, 2) for v in load_fit_end],
        "peak_rss_mb_after_fit": round(rss_fit, 1),
        "online_state_fill_seconds": round(state_seconds, 1),
        "manifest_params": manifest.params,
        "manifest_metrics": manifest.metrics,
        "manifest_fit_seconds": manifest.fit_seconds,
        "source_weights": dict(bundle.source_weights),
        "user_lists_mb": round(bundle.user_lists.nbytes / 2**20, 2),
        "neighbours_mb": round((bundle.neighbours.data.nbytes + bundle.neighbours.indices.nbytes
                                + bundle.neighbours.indptr.nbytes) / 2**20, 2),
        "factors_mb": round(bundle.factors.item_factors.nbytes / 2**20, 2)
        if bundle.factors is not None else 0.0,
        "lists_only": {**_ranked_metrics(lists, test, users), "users_with_list": listed},
    }
    print("lists only", json.dumps(out["lists_only"]), flush=True)

    passes: dict[str, Any] = {}
    shipped = dict(bundle.source_weights)
    for label, sources, override in SERVED_VARIANTS:
        if variants and label not in variants:
            continue
        bundle.source_weights = {**shipped, **{
            name: shipped.get("popular", 0.0) if w < 0 else w for name, w in override.items()}}
        ranked = np.full((len(users), 20), -1, dtype=np.int64)
        served_from: dict[str, int] = {}
        asked: dict[str, int] = {}
        leaks = short = 0
        load_start = os.getloadavg()
        cpu = time.process_time()
        started = time.perf_counter()
        for r, u in enumerate(users):
            request = RecommendationRequest(user_id=f"u{u}", n=20, explain=False,
                                            sources=sources)
            result = service.recommend(tenant, request)
            got = [item_index(i.item_id) for i in result.items]
            ranked[r, :len(got)] = got
            short += len(got) < 20
            leaks += len(train_sets.get(int(u), set()).intersection(got))
            for i in result.items:
                served_from[i.source] = served_from.get(i.source, 0) + 1
            for name in result.sources:
                asked[name] = asked.get(name, 0) + 1
        seconds = time.perf_counter() - started
        passes[label] = {
            "sources": sources, **_ranked_metrics(ranked, test, users),
            "weights_overridden": {name: bundle.source_weights[name] for name in override},
            "requests_per_second": round(len(users) / seconds, 1),
            "seconds": round(seconds, 1), "cpu_seconds": round(time.process_time() - cpu, 1),
            "loadavg_start": [round(v, 2) for v in load_start],
            "loadavg_end": [round(v, 2) for v in os.getloadavg()],
            "short_lists": short, "train_items_served": leaks,
            "items_by_top_source": served_from, "requests_using_source": asked,
        }
        print(label, json.dumps(passes[label]), flush=True)
    bundle.source_weights = shipped
    out["passes"] = passes
    if "default" in passes:
        out["recall@20"] = passes["default"]["recall@20"]
        out["ndcg@20"] = passes["default"]["ndcg@20"]
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    if max_users is not None:
        print("subset run (--max-users): not merged into results/gowalla.json", flush=True)
        return
    merge({"served_default": out})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("phase",
                        choices=["ease-check", "models", "best", "bspm", "bspm-served",
                                 "served-default"])
    parser.add_argument("--only", nargs="*",
                        help="models phase: only these labels; served-default: only these "
                             "source variants")
    parser.add_argument("--max-users", type=int, default=None,
                        help="served-default: only users below this id (a quick check; "
                             "nothing is written)")
    args = parser.parse_args()
    if args.phase == "ease-check":
        ease_check()
    elif args.phase == "models":
        models(args.only)
    elif args.phase == "bspm":
        bspm()
    elif args.phase == "bspm-served":
        bspm_served()
    elif args.phase == "served-default":
        served_default(args.max_users, args.only)
    else:
        best()


if __name__ == "__main__":
    main()
