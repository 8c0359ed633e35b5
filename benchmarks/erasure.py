"""Erasure at Gowalla scale (issue 5): ``DELETE /v1/users/{id}`` through the API against a served
model, timing the whole erasure — stores, online state, caches, and the exact subtraction of the
person from the item-item model (a new version derived and promoted) — per person.

Data: a copy of the serving benchmark's database (``benchmarks/serving.py --work DIR`` leaves
810,128 Gowalla check-ins in ``DIR/bench.db``); the model is trained here through the privacy gate
(as ``personify train`` does), so it carries the influence index exact erasure needs.

Run: python benchmarks/erasure.py --work /tmp/servwork [--people 20]
Writes benchmarks/results/erasure.json.

``--model ease [--items 10000]``: the same erasures against an EASE neighbour model, whose kept
inverse ``P`` is downdated exactly (Woodbury) at each erasure. EASE's dense ``items x items``
matrices do not fit Gowalla's 41k items on this machine next to the other jobs, so the data is
Gowalla's check-ins at its ``--items`` most visited places (a database built in ``--work`` on
the first run). After the erasures the served neighbours are compared with a model retrained
on the remaining events. Writes benchmarks/results/erasure_ease.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fastapi.testclient import TestClient
from pydantic import SecretStr

from _report import write_results
from personify.app import create_app
from personify.jobs.training import TrainingConfig, train_bundle, train_tenant
from personify.privacy.runtime import open_runtime
from personify.settings import Settings
from personify.storage.registry import open_stores

KEY = "bench-admin-key-0123456789abcdef"


def ease_database(work: Path, n_items: int) -> Path:
    """Gowalla's check-ins at its ``n_items`` most visited places, in a SQLite store."""
    from collections import Counter

    from serving import load_gowalla, populate

    path = work / f"ease{n_items}.db"
    if path.exists():
        return path
    work.mkdir(parents=True, exist_ok=True)
    users = load_gowalla(None)
    counts = Counter(i for items in users.values() for i in items)
    kept = {i for i, _ in counts.most_common(n_items)}
    subset = {u: [i for i in items if i in kept] for u, items in users.items()}
    stored = populate(f"sqlite:///{path}", {u: items for u, items in subset.items() if items})
    print(f"{stored} check-ins at {len(kept)} places in {path}", flush=True)
    return path


def links(bundle: Any) -> dict[tuple[str, str], float]:
    """The served neighbour weights by item ids (a retrain may not know an item only the erased
    people had)."""
    m = bundle.neighbours.tocoo()
    ids = bundle.items.ids
    return {(ids[r], ids[c]): float(v) for r, c, v in zip(m.row, m.col, m.data, strict=True)}


def compare_with_retrain(served: Any, fresh: Any) -> dict[str, Any]:
    """How far the served (downdated) neighbours are from a model retrained without the people."""
    got, want = links(served), links(fresh)
    shared = got.keys() & want.keys()
    by_item: dict[str, set[str]] = {}
    for (a, b) in want:
        by_item.setdefault(a, set()).add(b)
    mine: dict[str, set[str]] = {}
    for (a, b) in got:
        mine.setdefault(a, set()).add(b)
    same = sum(mine.get(a, set()) == targets for a, targets in by_item.items())
    return {
        "ease_links_served": len(got),
        "ease_links_retrained": len(want),
        "ease_links_shared_share": round(len(shared) / max(1, len(got.keys() | want.keys())), 6),
        "ease_max_abs_weight_diff": max((abs(got[k] - want[k]) for k in shared), default=0.0),
        "ease_items_same_topk_share": round(same / max(1, len(by_item)), 6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path("/tmp/servwork"))
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--model", choices=["default", "ease"], default="default")
    parser.add_argument("--items", type=int, default=10_000, help="places kept with --model ease")
    args = parser.parse_args()
    ease = args.model == "ease"
    source = ease_database(args.work, args.items) if ease else args.work / "bench.db"
    if not source.exists():
        raise SystemExit(f"{source} is missing: run benchmarks/serving.py --work {args.work} first")
    config = (
        TrainingConfig(model="ease", params={"l2": 500.0}, user_model=None, factors=None,
                       learn_blend=False, train_ranker=False)
        if ease else TrainingConfig()
    )
    tmp = Path(tempfile.mkdtemp(prefix="personify-erasure-"))
    shutil.copy(source, tmp / "bench.db")
    from personify.privacy.ease_inverse import EASE_FILE
    settings = Settings(
        database_url=f"sqlite:///{tmp / 'bench.db'}",
        model_dir=str(tmp / "models"),
        admin_key=SecretStr(KEY),
        consent_defaults={"personalization": "opt-out", "profiling": "opt-out"},
    )
    stores = open_stores(settings.database_url)
    runtime = open_runtime(stores, **settings.privacy_options())
    t0 = time.perf_counter()
    manifest = train_tenant(
        stores.events, runtime.model_store(settings.model_dir), "default", config,
        catalog=stores.catalog, users=stores.users, privacy=runtime.training(),
    )
    fit_s = time.perf_counter() - t0
    print(f"trained {manifest.version} through the privacy gate in {fit_s:.0f}s", flush=True)
    inverse = Path(settings.model_dir) / "default" / manifest.version / EASE_FILE
    inverse_mb = round(inverse.stat().st_size / 2**20, 1) if inverse.exists() else None
    n_users = int(manifest.metrics["users"])
    stores.close()

    app = create_app(settings)
    random.seed(1)
    people = [f"u{u}" for u in random.sample(range(29_858), 4 * args.people)]
    rows: list[dict[str, Any]] = []
    with TestClient(app) as client:
        engine = app.state.runtime.engine
        if engine.warm_up_thread is not None:
            engine.warm_up_thread.join()  # the in-process online state holds everyone first
        headers = {"Authorization": f"Bearer {KEY}"}
        for person in people:
            if len(rows) >= args.people:
                break
            start = time.perf_counter()
            got = client.delete(f"/v1/users/{person}", headers=headers)
            wall = time.perf_counter() - start
            got.raise_for_status()
            receipt = got.json()
            if ease and receipt["model_status"] == "not_in_model":
                continue  # none of their places were kept: not a person of this model
            rows.append({"user_id": person, "wall_seconds": round(wall, 3), **{
                k: receipt[k] for k in ("events_deleted", "online_state_forgotten",
                                        "model_status", "model_neighbours_exact",
                                        "retrain_pending", "seconds")}})
            print(json.dumps(rows[-1]), flush=True)
        # other people are still served from the derived model
        after = client.post("/v1/recommendations", headers=headers,
                            json={"user_id": "u1", "n": 20, "log_impression": False}).json()
    walls = sorted(r["wall_seconds"] for r in rows)
    metrics = {
        "erasure_seconds_p50": statistics.median(walls),
        "erasure_seconds_max": walls[-1],
        "erasure_seconds_mean": round(statistics.fmean(walls), 3),
        "people": len(rows),
        "model_subtracted": sum(r["model_status"] == "subtracted" for r in rows),
        "model_exact": sum(bool(r["model_neighbours_exact"]) for r in rows),
        "events_deleted_mean": round(statistics.fmean(r["events_deleted"] for r in rows), 1),
        "model_fit_seconds": round(fit_s, 1),
        "served_after": after.get("model_version"),
        "load_average_end": os.getloadavg(),
    }
    if ease:
        models = runtime.model_store(settings.model_dir)
        _, served = models.load("default")
        reopened = open_stores(settings.database_url)
        t1 = time.perf_counter()
        fresh, _ = train_bundle(reopened.events.scan("default"), config, version="retrained")
        retrain_s = time.perf_counter() - t1
        metrics.update({
            "ease_items": int(served.neighbours.shape[0]), "ease_users": n_users,
            "ease_inverse_mb": inverse_mb, "ease_retrain_seconds": round(retrain_s, 1),
            # the baseline of the same run: dropping the person and retraining
            "ease_erasure_p50_over_retrain": round(metrics["erasure_seconds_p50"] / retrain_s, 4),
            **compare_with_retrain(served, fresh),
        })
        reopened.close()
    path = write_results("erasure_ease" if ease else "erasure", metrics, details=rows)
    print(json.dumps(metrics), f"wrote {path}", sep="\n")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
