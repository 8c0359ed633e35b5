"""Erasure at Gowalla scale (issue 5): ``DELETE /v1/users/{id}`` through the API against a served
model, timing the whole erasure — stores, online state, caches, and the exact subtraction of the
person from the item-item model (a new version derived and promoted) — per person.

Data: a copy of the serving benchmark's database (``benchmarks/serving.py --work DIR`` leaves
810,128 Gowalla check-ins in ``DIR/bench.db``); the model is trained here through the privacy gate
(as ``personify train`` does), so it carries the influence index exact erasure needs.

Run: python benchmarks/erasure.py --work /tmp/servwork [--people 20]
Writes benchmarks/results/erasure.json.
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
from personify.jobs.training import TrainingConfig, train_tenant
from personify.privacy.runtime import open_runtime
from personify.settings import Settings
from personify.storage.registry import open_stores

KEY = "bench-admin-key-0123456789abcdef"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path("/tmp/servwork"))
    parser.add_argument("--people", type=int, default=20)
    args = parser.parse_args()
    source = args.work / "bench.db"
    if not source.exists():
        raise SystemExit(f"{source} is missing: run benchmarks/serving.py --work {args.work} first")
    tmp = Path(tempfile.mkdtemp(prefix="personify-erasure-"))
    shutil.copy(source, tmp / "bench.db")
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
        stores.events, runtime.model_store(settings.model_dir), "default", TrainingConfig(),
        catalog=stores.catalog, users=stores.users, privacy=runtime.training(),
    )
    fit_s = time.perf_counter() - t0
    print(f"trained {manifest.version} through the privacy gate in {fit_s:.0f}s", flush=True)
    stores.close()

    app = create_app(settings)
    random.seed(1)
    people = [f"u{u}" for u in random.sample(range(29_858), args.people)]
    rows: list[dict[str, Any]] = []
    with TestClient(app) as client:
        engine = app.state.runtime.engine
        if engine.warm_up_thread is not None:
            engine.warm_up_thread.join()  # the in-process online state holds everyone first
        headers = {"Authorization": f"Bearer {KEY}"}
        for person in people:
            start = time.perf_counter()
            got = client.delete(f"/v1/users/{person}", headers=headers)
            wall = time.perf_counter() - start
            got.raise_for_status()
            receipt = got.json()
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
    path = write_results("erasure", metrics, details=rows)
    print(json.dumps(metrics), f"wrote {path}", sep="\n")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
