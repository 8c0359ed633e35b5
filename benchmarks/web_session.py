"""What personalization without a profile costs: session-only answers
(``POST /v1/recommendations/session``: the visit's interactions only, nothing stored) against
full answers (``/v1/recommendations`` for the person: their stored history plus the visit,
through the online state), both from the real serving chain over the same trained bundle.

* Diginetica sample (the protocol of benchmarks/session.py: the last 30 days of sessions are
  test, views of items unseen in train removed): every prefix of a test session predicts its
  next view; HitRate@20 and MRR@20. The full answer's person is the session's ``user_id`` when
  the file has one (their earlier sessions are stored history), else the session as an
  anonymous visitor (then full = the same visit read from the online state).
* Online Retail (temporal split, the last 30 days test): for each customer with purchases before
  the cut-off and a basket of at least two products after it, their last basket: its first
  product is the visit (an ``add_to_cart``), HitRate@20 = one of the basket's other products in
  the 20 answers.

Timestamps are shifted so that the data's last day ends now (the online state and the chain
read wall-clock windows); the chain's clock follows each replayed event.

    nice -n 10 python benchmarks/web_session.py [--customers 400]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _web_json import merge_web_results
from personify.data.diginetica import read_diginetica, split_sessions_by_date
from personify.data.online_retail import read_online_retail
from personify.domain.events import Event
from personify.domain.items import Item
from personify.jobs.training import TrainingConfig, train_tenant
from personify.runtime.container import Runtime, build_runtime
from personify.serving.request import RecommendationRequest
from personify.settings import Settings
from personify.storage.online.port import Interaction

HERE = Path(__file__).resolve().parent
DATASETS = HERE.parent.parent / "shared" / "datasets"
K = 20
TEST_DAYS = 30
TENANT = "default"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def runtime(work: Path, clock: Clock) -> Runtime:
    settings = Settings(
        database_url="memory://", model_dir=str(work / "models"), demo=False,
        consent_defaults={"personalization": "opt-out", "profiling": "opt-out"},
    )
    rt = build_runtime(settings)
    rt.engine.service.clock = clock
    return rt


def train(rt: Runtime) -> None:
    stores = rt.stores
    train_tenant(stores.events, rt.engine.models, TENANT, TrainingConfig(learn_blend=False),
                 catalog=stores.catalog, users=stores.users)
    rt.engine.bundles.refresh()
    rt.engine.bundles.get(TENANT)


def ingest(rt: Runtime, events: list[Event]) -> None:
    for start in range(0, len(events), 2000):
        rt.ingestor.ingest(TENANT, events[start: start + 2000])


def session_only(rt: Runtime, visit: list[Interaction]) -> list[str]:
    request = RecommendationRequest(n=K, log_impression=False)
    result = rt.engine.service.recommend_session(TENANT, request, visit)
    return [i.item_id for i in result.items]


def full(rt: Runtime, subject: dict[str, str]) -> list[str]:
    request = RecommendationRequest(n=K, log_impression=False, **subject)  # type: ignore[arg-type]
    return [i.item_id for i in rt.engine.service.recommend(TENANT, request).items]


def scores(ranks: list[int | None]) -> tuple[float, float]:
    hits = [r is not None for r in ranks]
    rr = [1.0 / (r + 1) if r is not None else 0.0 for r in ranks]
    return round(float(np.mean(hits)), 5), round(float(np.mean(rr)), 5)


def rank_of(target: str, answer: list[str]) -> int | None:
    return answer.index(target) if target in answer else None


def diginetica(work: Path) -> dict[str, Any]:
    path = DATASETS / "diginetica_sample_srgnn" / "sample_train-item-views.csv"
    log = read_diginetica(path)
    train_log, test_log = split_sessions_by_date(log, test_days=TEST_DAYS)
    users: dict[str, str] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=";")
        next(reader)
        for sid, user, *_ in reader:
            if user and user != "NA":
                users[sid] = user
    shift = datetime.now(UTC) - timedelta(hours=1) - datetime.fromtimestamp(
        float(log.dates.max()), UTC)
    clock = Clock()
    rt = runtime(work / "diginetica", clock)

    def who(sid: str) -> dict[str, str]:
        return {"user_id": f"d{users[sid]}"} if sid in users else {"anonymous_id": f"s{sid}"}

    items = {i for seq in log.sequences for i in seq}
    rt.stores.catalog.upsert(TENANT, [Item(item_id=f"i{i}", title=f"Item {i}") for i in items])
    events: list[Event] = []
    for sid, seq, day in zip(train_log.session_ids, train_log.sequences, train_log.dates,
                             strict=True):
        start = datetime.fromtimestamp(float(day), UTC) + shift
        events += [Event(event_id=f"v{sid}-{k}", type="view", item_id=f"i{item}",
                         timestamp=start + timedelta(minutes=k), **who(sid))  # type: ignore[arg-type]
                   for k, item in enumerate(seq)]
    clock.now = datetime.now(UTC)
    ingest(rt, events)
    t0 = time.perf_counter()
    train(rt)
    fit_s = time.perf_counter() - t0
    known_users = {users[s] for s in train_log.session_ids if s in users}
    only: list[int | None] = []
    both: list[int | None] = []
    with_history = 0
    for sid, seq, day in zip(test_log.session_ids, test_log.sequences, test_log.dates,
                             strict=True):
        start = datetime.fromtimestamp(float(day), UTC) + shift
        subject = who(sid)
        if sid in users and users[sid] in known_users:
            with_history += len(seq) - 1
        for cut in range(1, len(seq)):
            at = start + timedelta(minutes=cut - 1)
            clock.now = at + timedelta(seconds=30)
            ingest(rt, [Event(event_id=f"t{sid}-{cut}", type="view", item_id=f"i{seq[cut - 1]}",
                              timestamp=at, **subject)])  # type: ignore[arg-type]
            visit = [Interaction(f"i{item}", "view", start + timedelta(minutes=k))
                     for k, item in enumerate(seq[:cut])]
            target = f"i{seq[cut]}"
            only.append(rank_of(target, session_only(rt, visit)))
            both.append(rank_of(target, full(rt, subject)))
    rt.close()
    hr_only, mrr_only = scores(only)
    hr_full, mrr_full = scores(both)
    return {
        "session_only_hr@20_diginetica": hr_only,
        "session_only_mrr@20_diginetica": mrr_only,
        "full_hr@20_diginetica": hr_full,
        "full_mrr@20_diginetica": mrr_full,
        "diginetica_cases": len(only),
        "diginetica_cases_with_stored_history": with_history,
        "diginetica_fit_seconds": round(fit_s, 1),
    }


def online_retail(work: Path, customers: int) -> dict[str, Any]:
    path = DATASETS / "online_retail_uci" / "online_retail.csv.gz"
    if not path.exists():
        path = next((DATASETS / "online_retail_uci").glob("*.csv*"))
    data = read_online_retail(path, anonymous="skip", drop_non_products=True)
    events = [e for e in data.events if e.type == "purchase"]
    last = max(e.timestamp for e in events)
    cutoff = last - timedelta(days=TEST_DAYS)
    shift = datetime.now(UTC) - timedelta(hours=1) - last
    clock = Clock()
    rt = runtime(work / "retail", clock)
    rt.stores.catalog.upsert(TENANT, data.items)
    train_events = [e.model_copy(update={"timestamp": e.timestamp + shift})
                    for e in events if e.timestamp <= cutoff]
    clock.now = datetime.now(UTC)
    ingest(rt, train_events)
    t0 = time.perf_counter()
    train(rt)
    fit_s = time.perf_counter() - t0
    buyers = {e.user_id for e in train_events}
    baskets: dict[str, dict[str, list[Event]]] = defaultdict(lambda: defaultdict(list))
    for e in events:
        if e.timestamp > cutoff and e.user_id in buyers and e.order_id:
            baskets[e.user_id or ""][e.order_id].append(e)
    cases: list[tuple[str, list[str], datetime]] = []
    for user in sorted(baskets):
        orders = baskets[user]
        newest = max(orders, key=lambda o: orders[o][0].timestamp)
        products = list(dict.fromkeys(e.item_id for e in orders[newest] if e.item_id))
        if len(products) >= 2:
            cases.append((user, products, orders[newest][0].timestamp + shift))
    rng = np.random.default_rng(0)
    if len(cases) > customers:
        picked = sorted(rng.choice(len(cases), customers, replace=False).tolist())
        cases = [cases[k] for k in picked]
    only: list[bool] = []
    both: list[bool] = []
    for user, products, at in cases:
        first, rest = products[0], set(products[1:])
        clock.now = at + timedelta(seconds=30)
        ingest(rt, [Event(event_id=f"cart-{user}-{first}", type="add_to_cart", user_id=user,
                          item_id=first, timestamp=at)])
        only.append(bool(rest & set(session_only(rt, [Interaction(first, "add_to_cart", at)]))))
        both.append(bool(rest & set(full(rt, {"user_id": user}))))
    rt.close()
    return {
        "session_only_hr@20_online_retail": round(float(np.mean(only)), 5),
        "full_hr@20_online_retail": round(float(np.mean(both)), 5),
        "online_retail_customers": len(cases),
        "online_retail_fit_seconds": round(fit_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=400,
                        help="Online Retail test customers (a seeded sample)")
    parser.add_argument("--only", choices=["diginetica", "online_retail"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="personify-web-session-"))
    metrics: dict[str, Any] = {
        "session_protocol": "session-only = POST /v1/recommendations/session's chain path "
        "(the visit only); full = the person's stored history + the visit through the online "
        "state; same trained bundle; k = 20",
    }
    runs: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("diginetica", lambda: diginetica(work)),
        ("online_retail", lambda: online_retail(work, args.customers)),
    ]
    for name, run in runs:
        if args.only and args.only != name:
            continue
        t0 = time.perf_counter()
        got = run()
        print(name, round(time.perf_counter() - t0, 1), "s", got, flush=True)
        metrics |= got
    print("wrote", merge_web_results(metrics, command="nice -n 10 python " + " ".join(sys.argv)))


if __name__ == "__main__":
    main()
