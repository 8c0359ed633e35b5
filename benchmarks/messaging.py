"""Messaging benchmark (issue 7).

(a) Send-time optimization on Online Retail invoice timestamps. Cleaning as the dataset README
    suggests (no cancellations, Quantity > 0, a CustomerID); one activity per invoice. Temporal
    split: invoices before 2011-11-09 train the model; for every customer with a training history
    the target is the hour of their first invoice on or after the cutoff. Hit = that hour within
    +-1 h (circular) of the predicted best hour. Baseline: the single best global hour.
    ``prior_strength`` is chosen on a validation split carved from the training months only.
    Timestamps are UK shop wall-clock times, so every person is placed in one zone (UTC here);
    the per-person zone handling is covered by unit tests.
(b) Throughput of a campaign to N recipients (default 100,000): each message renders a personal
    4-item recommendation block with signed tracking links, goes through the SQLite-file outbox
    (leases, consent / unsubscribe (SQLite) / per-day cap checks (counts loaded per claimed
    batch), "send started" with the tracked links / outcome commits) and is delivered over
    persistent SMTP connections to a local aiosmtpd sink running in its own process, which
    records every Message-ID; the run checks that each arrived exactly once.

    python benchmarks/messaging.py                      # both parts, 100,000 recipients
    python benchmarks/messaging.py --recipients 5000 --no-write
    python benchmarks/messaging.py --skip-sto --skip-campaign --outbox-ops 3 --recipients 5000
                                                        # the outbox operations alone
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import write_results
from personify.data.online_retail import iter_lines
from personify.domain.items import Item
from personify.domain.users import Profile, User
from personify.messaging import smtp_sink
from personify.messaging.campaigns import Campaign, schedule_campaign
from personify.messaging.guardrails import FrequencyCap, Guardrails
from personify.messaging.outbox import OutboxWorker
from personify.messaging.records import DeliveryStatus, TrackedLink
from personify.messaging.smtp import SmtpConfig, SmtpSender
from personify.messaging.state_stores import open_state_file
from personify.messaging.templates import MessageTemplate, TemplateVariant
from personify.messaging.timing import SendTimeModel
from personify.messaging.tracking import TrackingSigner

DATASET = Path(os.environ.get("PERSONIFY_DATASETS_DIR", "/work/shared/datasets"))
RETAIL = DATASET / "online_retail_uci" / "online_retail.csv.gz"
CUTOFF = datetime(2011, 11, 9, tzinfo=UTC)
VALIDATION_CUTOFF = datetime(2011, 10, 9, tzinfo=UTC)


# -- (a) send-time optimization --------------------------------------------------------------


def load_invoices() -> tuple[list[tuple[str, datetime]], dict[str, str], list[Item]]:
    """(customer, invoice time) once per invoice, each customer's country, the products."""
    seen: set[str] = set()
    invoices: list[tuple[str, datetime]] = []
    country: dict[str, str] = {}
    titles: dict[str, str] = {}
    for line in iter_lines(RETAIL):
        if line.cancelled or line.quantity <= 0 or not line.customer_id:
            continue
        titles.setdefault(line.stock_code, line.description)
        country[line.customer_id] = line.country
        if line.invoice not in seen:
            seen.add(line.invoice)
            invoices.append((line.customer_id, line.timestamp))
    items = [
        Item(item_id=code, title=title.title()[:80], price=float(len(title) % 20 + 1),
             currency="GBP")
        for code, title in titles.items() if title
    ]
    return sorted(invoices, key=lambda r: r[1]), country, items


def _hit(predicted: int, actual: int) -> bool:
    d = abs(predicted - actual) % 24
    return min(d, 24 - d) <= 1


def sto_split(
    invoices: list[tuple[str, datetime]], start: datetime | None, cutoff: datetime
) -> tuple[list[tuple[str, datetime]], dict[str, int]]:
    train = [r for r in invoices if r[1] < cutoff and (start is None or r[1] >= start)]
    known = {c for c, _ in train}
    target: dict[str, int] = {}
    for customer, at in invoices:
        if at >= cutoff and customer in known and customer not in target:
            target[customer] = at.hour
    return train, target


def sto_score(
    train: list[tuple[str, datetime]], target: dict[str, int], users: dict[str, User],
    prior_strength: float,
) -> tuple[float, float]:
    model = SendTimeModel(prior_strength=prior_strength).fit(train, users)
    best_global = model.global_best_hour()
    hits = sum(_hit(model.best_hour(users[c]), h) for c, h in target.items())
    global_hits = sum(_hit(best_global, h) for h in target.values())
    return hits / len(target), global_hits / len(target)


def run_sto() -> dict[str, Any]:
    started = time.perf_counter()
    invoices, country, _ = load_invoices()
    users = {c: User(user_id=c, profile=Profile(country=k, time_zone="UTC"))
             for c, k in country.items()}
    before_cutoff = [r for r in invoices if r[1] < CUTOFF]  # validation never sees the test month
    val_train, val_target = sto_split(before_cutoff, None, VALIDATION_CUTOFF)
    grid = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    validation = {s: sto_score(val_train, val_target, users, s)[0] for s in grid}
    strength = max(grid, key=lambda s: (validation[s], -s))
    train, target = sto_split(invoices, None, CUTOFF)
    hit, global_hit = sto_score(train, target, users, strength)
    hours = np.array(list(target.values()))
    return {
        "sto_hit_rate_1h": round(hit, 4),
        "global_hour_hit_rate_1h": round(global_hit, 4),
        "sto_vs_global_ratio": round(hit / global_hit, 3) if global_hit else None,
        "sto_test_customers": len(target),
        "sto_train_invoices": len(train),
        "sto_prior_strength": strength,
        "sto_validation_hit_rate_by_prior": {str(k): round(v, 4) for k, v in validation.items()},
        "sto_test_hour_spread_std": round(float(hours.std()), 2),
        "sto_seconds": round(time.perf_counter() - started, 1),
    }


# -- (b) campaign throughput -----------------------------------------------------------------

TEMPLATE = MessageTemplate(
    name="weekly",
    recommendations=4,
    variants=[TemplateVariant.model_validate(v) for v in (
        {"language": "en", "tone": "formal",
         "subject": "{{ user.name }}, {{ recommendations|length }} "
                    "{{ recommendations|length|plural('pick', 'picks') }} for you this week",
         "preheader": "Chosen for you from what you like",
         "html": "<html><body><h1>Hello {{ user.name }}</h1><table>"
                 "{% for r in recommendations %}<tr><td><a href=\"{{ r.url }}\">{{ r.title }}"
                 "</a></td><td>{{ '%.2f'|format(r.price) }} {{ r.currency }}</td></tr>"
                 "{% endfor %}</table><p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>"
                 "</body></html>",
         "text": "Hello {{ user.name }}\n{% for r in recommendations %}* {{ r.title }} "
                 "{{ r.url }}\n{% endfor %}\nUnsubscribe: {{ unsubscribe_url }}"},
        {"language": "ru", "tone": "informal",
         "subject": "{{ user.name }}, {{ recommendations|length }} "
                    "{{ recommendations|length|plural('находка', 'находки', 'находок') }}"
                    " для тебя",
         "preheader": "Подобрали по твоим интересам",
         "html": "<html><body><h1>Привет, {{ user.name }}!</h1><table>"
                 "{% for r in recommendations %}<tr><td><a href=\"{{ r.url }}\">{{ r.title }}"
                 "</a></td><td>{{ '%.2f'|format(r.price) }} {{ r.currency }}</td></tr>"
                 "{% endfor %}</table><p><a href=\"{{ unsubscribe_url }}\">Отписаться</a></p>"
                 "</body></html>",
         "text": "Привет, {{ user.name }}!\n{% for r in recommendations %}* {{ r.title }} "
                 "{{ r.url }}\n{% endfor %}\nОтписаться: {{ unsubscribe_url }}"},
    )],
)


def make_user(i: int) -> User:
    ru = i % 3 == 0
    return User(
        user_id=f"u{i}",
        profile=Profile(name=f"Пользователь {i}" if ru else f"Person {i}",
                        email=f"u{i}@example.com", language="ru" if ru else "en",
                        time_zone="Europe/Moscow" if ru else "Europe/London"),
        properties={"tone": "informal" if ru else "formal"},
    )


def open_outbox(db: str | Path) -> tuple[Any, Any, Any]:
    """(outbox, suppressions, close) on the messaging file ``db``, as the service opens them."""
    stores = open_state_file(db)
    return stores.outbox, stores.suppressions, stores.close


def worker_process(db: str, port: int, recipients: int, items: list[Item], worker_id: str,
                   concurrency: int, batch: int, result: Any) -> None:
    """One worker process: drain the outbox, report its CPU time and counters."""
    users = {f"u{i}": None for i in range(recipients)}
    cache: dict[str, User] = {}

    def lookup(tenant: str, user_id: str) -> User | None:
        if user_id not in users:
            return None
        user = cache.get(user_id)
        if user is None:
            user = cache[user_id] = make_user(int(user_id[1:]))
        return user

    def recommend(tenant: str, user_id: str, n: int) -> list[Item]:
        h = int(hashlib.blake2b(user_id.encode(), digest_size=4).hexdigest(), 16)
        step = 1 + h % 97
        return [items[(h + k * step) % len(items)] for k in range(n)]

    signer = TrackingSigner(b"benchmark-secret-0123456789", "https://t.example",
                            mailto_domain="example.com")

    def senders() -> dict[str, SmtpSender]:
        return {"email": SmtpSender(SmtpConfig(port=port, sender="news@example.com",
                                               sender_name="Shop"), signer)}

    consents = {f"u{i}" for i in range(recipients)}  # everyone opted in to email_marketing
    outbox, suppressions, close = open_outbox(db)
    worker = OutboxWorker(
        store=outbox, templates=lambda t, n: TEMPLATE, users=lookup,
        senders=senders(), make_senders=senders if concurrency > 1 else None,
        concurrency=concurrency, consent=lambda t, u, p: u in consents,
        suppressions=suppressions, recommend=recommend, signer=signer,
        # the default caps (2 emails per person per local day, counted in the outbox);
        # no quiet hours, so the figure does not depend on the time of day of the run
        guardrails=Guardrails(caps=FrequencyCap(), quiet_hours=None),
        worker_id=worker_id, batch_size=batch, lease=timedelta(minutes=5),
    )
    cpu = time.process_time()
    worker.run_until_idle()
    worker.close()
    close()
    result.put({"cpu_s": time.process_time() - cpu, "sent": worker.stats.sent,
                "failed": worker.stats.failed})


def run_campaign(recipients: int, workers: int, concurrency: int, batch: int,
                 items: list[Item]) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="personify-msg-bench-"))
    db, record = tmp / "outbox.messaging.db", tmp / "sink-ids.txt"
    store, _, close_store = open_outbox(db)
    campaign = Campaign(name="weekly", template="weekly", send_at=datetime.now(UTC))
    t0 = time.perf_counter()
    enqueued = schedule_campaign(store, "shop", campaign,
                                 (make_user(i) for i in range(recipients)),
                                 now=datetime.now(UTC), batch_size=2_000)
    enqueue_s = time.perf_counter() - t0
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    port = smtp_sink.free_port()
    sink = ctx.Process(target=smtp_sink.serve_forever, args=(port, str(record), ready, stop))
    sink.start()
    ready.wait(60)
    results = ctx.Queue()
    load_before = os.getloadavg()[0]
    loads: list[float] = []
    sampling = threading.Event()

    def sample_load() -> None:  # the 1-minute load average every 5 s while the workers run
        while not sampling.wait(5.0):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample_load, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    procs = [
        ctx.Process(target=worker_process,
                    args=(str(db), port, recipients, items, f"w{k}", concurrency, batch, results))
        for k in range(workers)
    ]
    for p in procs:
        p.start()
    reports = [results.get() for _ in procs]
    for p in procs:
        p.join()
    send_s = time.perf_counter() - t0
    load_after = os.getloadavg()[0]
    sampling.set()
    sampler.join()
    stop.set()
    sink.join(60)
    received = Counter(record.read_text(encoding="ascii").split())
    sink_cpu = float(Path(f"{record}.cpu").read_text(encoding="ascii"))
    counts = store.counts()
    close_store()
    sent = sum(r["sent"] for r in reports)
    cpu = sum(r["cpu_s"] for r in reports)
    return {
        "campaign_recipients": recipients,
        "campaign_messages_per_s": round(sent / send_s, 1),
        "campaign_send_seconds": round(send_s, 1),
        "campaign_enqueue_per_s": round(enqueued / enqueue_s, 1),
        "campaign_worker_cpu_ms_per_message": round(1000 * cpu / max(sent, 1), 3),
        "campaign_cpu_bound_messages_per_s_per_core": round(sent / cpu, 1) if cpu else None,
        "campaign_sink_cpu_ms_per_message": round(1000 * sink_cpu / max(sent, 1), 3),
        "campaign_total_cpu_ms_per_message": round(1000 * (cpu + sink_cpu) / max(sent, 1), 3),
        "campaign_workers": workers,
        "campaign_threads_per_worker": concurrency,
        "campaign_claim_batch": batch,
        "campaign_sink_received": sum(received.values()),
        "campaign_sink_unique_message_ids": len(received),
        "campaign_duplicates": sum(n - 1 for n in received.values() if n > 1),
        "campaign_outbox_status": counts,
        "machine_load_average_1m_before_after": [round(load_before, 1), round(load_after, 1)],
        "machine_load_average_1m_during": {
            "mean": round(sum(loads) / len(loads), 1) if loads else None,
            "max": round(max(loads), 1) if loads else None,
            "samples": len(loads),
        },
    }


def store_ops_cpu(messages: int) -> float:
    """CPU ms per message of the outbox's own operations alone, as the worker calls them: a
    claim of 200 and the batch's cap counts, then per message the unsubscribe check, "send
    started" with 4 tracked links and the result."""
    db = Path(tempfile.mkdtemp(prefix="personify-msg-ops-")) / "ops.messaging.db"
    outbox, suppressions, close = open_outbox(db)
    now = datetime.now(UTC)
    schedule_campaign(outbox, "shop", Campaign(name="ops", template="weekly", send_at=now),
                      (make_user(i) for i in range(messages)), now=now, batch_size=2_000)
    links = {f"l{k}": TrackedLink(url=f"https://shop.example/p/{k}", item_id=f"i{k}",
                                  recommendation_id="r") for k in range(4)}
    day = (now - timedelta(hours=12), now + timedelta(hours=12))
    cpu, done = time.process_time(), 0
    while batch := outbox.claim("ops", now, limit=200, lease=timedelta(minutes=5)):
        outbox.count_sent_many("shop", "email", {m.user_id: day for m in batch})
        for m in batch:
            suppressions.is_suppressed("shop", m.user_id, "email")
            outbox.begin_send(m.message_id, m.claim_token or "", links)
            outbox.mark(m.message_id, m.claim_token or "", DeliveryStatus.SENT, now)
            done += 1
    cpu = time.process_time() - cpu
    close()
    assert done == messages, (done, messages)
    return 1000 * cpu / messages


def outbox_ops(args: argparse.Namespace) -> dict[str, Any]:
    """The outbox operations alone on the messaging file, ``--outbox-ops`` rounds."""
    ops = [round(store_ops_cpu(args.recipients), 4) for _ in range(args.outbox_ops)]
    print("outbox operations", ops, "ms CPU per message")
    return {"outbox_ops_cpu_ms_per_message": float(np.median(ops)),
            "outbox_ops_rounds": args.outbox_ops, "outbox_ops_messages": args.recipients}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--skip-sto", action="store_true")
    parser.add_argument("--skip-campaign", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--outbox-ops", type=int, default=0, metavar="ROUNDS",
                        help="also measure the outbox operations alone (CPU per message) "
                        "ROUNDS times")
    args = parser.parse_args()
    metrics: dict[str, Any] = {}
    if not args.skip_sto:
        metrics.update(run_sto())
        print({k: v for k, v in metrics.items() if k.startswith("sto") or "global" in k})
    if not args.skip_campaign:
        _, _, items = load_invoices()
        metrics.update(run_campaign(args.recipients, args.workers, args.threads, args.batch,
                                    items[:4000]))
        print({k: v for k, v in metrics.items() if k.startswith(("campaign", "machine"))})
    if args.outbox_ops:
        metrics.update(outbox_ops(args))
    if not args.no_write:
        print(write_results("messaging", metrics))


if __name__ == "__main__":
    main()
