"""A worker process killed with SIGKILL mid-campaign loses and duplicates nothing, and two
workers sharing one PostgreSQL outbox send every message exactly once.

The outbox lives in a SQLite file or in PostgreSQL (the SQL stores, whose claim is ``SELECT ...
FOR UPDATE SKIP LOCKED``), the SMTP sink (aiosmtpd) in this process, the workers in spawned
children. After the kill a fresh worker takes over once the dead worker's leases expire.
Every Message-ID must reach the sink; a Message-ID may arrive twice only if the outbox flagged
that message ``in_doubt`` (its send had started when the worker died), at most one per kill.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aiosmtpd")

from personify.domain.users import User
from personify.messaging.campaigns import Campaign, schedule_campaign
from personify.messaging.guardrails import FrequencyCap, Guardrails
from personify.messaging.ports import OutboxStore
from personify.messaging.records import DeliveryStatus
from personify.messaging.smtp_sink import SmtpSink
from personify.messaging.state_stores import memory_state, open_state_file, open_state_stores

RECIPIENTS = 200
LEASE_S = 1.0


def _users() -> dict[str, User]:
    return {
        f"u{i}": User(user_id=f"u{i}", profile={"name": f"Person {i}",
                                                "email": f"u{i}@example.com"})
        for i in range(RECIPIENTS)
    }


def open_outbox(target: str) -> OutboxStore:
    """The outbox in a SQLite file (a path) or in a PostgreSQL database (a URL)."""
    if target.startswith("postgresql"):
        return open_state_stores(target).outbox
    return open_state_file(target).outbox


def run_worker(
    db: str, port: int, worker_id: str, lease_s: float = LEASE_S, start: Any = None,
    handled: Any = None,
) -> None:
    """Child process: send everything that is due, then exit. With ``start`` (an Event) it
    waits for it once ready, so that workers begin together; ``handled`` (a Queue) receives
    how many messages it handled."""
    from datetime import timedelta

    from personify.domain.items import Item
    from personify.messaging.outbox import OutboxWorker
    from personify.messaging.smtp import SmtpConfig, SmtpSender
    from personify.messaging.templates import MessageTemplate

    template = MessageTemplate(name="news", recommendations=3, variants=[{
        "subject": "News for {{ user.name }}",
        "html": "{% for r in recommendations %}<a href='{{ r.url }}'>{{ r.title }}</a>"
                "{% endfor %}",
        "text": "{% for r in recommendations %}{{ r.title }} {% endfor %}",
    }])
    users = _users()
    worker = OutboxWorker(
        store=open_outbox(db),
        templates=lambda t, n: template,
        users=lambda t, u: users.get(u),
        senders={"email": SmtpSender(SmtpConfig(port=port))},
        consent=lambda t, u, p: True,
        suppressions=memory_state().suppressions,
        recommend=lambda t, u, n: [Item(item_id=f"{u}-{k}", title=f"item {k}") for k in range(n)],
        guardrails=Guardrails(caps=FrequencyCap({}), quiet_hours=None),
        worker_id=worker_id,
        lease=timedelta(seconds=lease_s),
        batch_size=25,
    )
    if start is not None:
        start.wait(60)
    count = worker.run_until_idle()
    if handled is not None:
        handled.put((worker_id, count))
    worker.close()


def _messages(store: OutboxStore) -> list[Any]:
    return [m for user in _users() for m in store.for_user("shop", user)]


def _pending(store: OutboxStore) -> int:
    final = {DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SUPPRESSED}
    return sum(1 for m in _messages(store) if m.status not in final)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def outbox_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "outbox.sqlite")
    return str(request.getfixturevalue("postgres_url"))


def _schedule(store: OutboxStore) -> set[str]:
    """The campaign to every recipient, due long ago by any clock (the workers are other
    processes, with the real wall clock); the Message-IDs the sink must receive."""
    scheduled = datetime(2026, 1, 1, 12, tzinfo=UTC)
    campaign = Campaign(name="spring", template="news", send_at=scheduled)
    assert schedule_campaign(store, "shop", campaign, _users().values(),
                             now=scheduled) == RECIPIENTS
    return {f"<{m.message_id}@personify.local>" for m in _messages(store)}


@pytest.mark.slow
def test_sigkill_mid_campaign_loses_and_duplicates_nothing(outbox_target: str) -> None:
    db = outbox_target
    store = open_outbox(db)
    expected = _schedule(store)
    ctx = multiprocessing.get_context("spawn")
    with SmtpSink(keep_bodies=False) as sink:
        first = ctx.Process(target=run_worker, args=(db, sink.port, "w1"))
        first.start()
        deadline = time.monotonic() + 60
        while len(sink.handler.message_ids) < RECIPIENTS // 4:
            assert time.monotonic() < deadline, "worker did not start sending"
            assert first.is_alive(), "worker finished before it could be killed"
            time.sleep(0.002)
        os.kill(first.pid, signal.SIGKILL)
        first.join(10)
        assert first.exitcode == -signal.SIGKILL
        delivered_before = len(sink.handler.message_ids)
        assert delivered_before < RECIPIENTS, "the kill came too late to test anything"
        assert _pending(store) > 0

        time.sleep(LEASE_S + 0.2)  # the dead worker's leases expire
        second = ctx.Process(target=run_worker, args=(db, sink.port, "w2"))
        second.start()
        second.join(120)
        assert second.exitcode == 0
        received = Counter(sink.handler.message_ids)

    assert set(received) == expected  # nothing lost
    assert store.counts() == {"sent": RECIPIENTS}
    in_doubt = {f"<{m.message_id}@personify.local>" for m in _messages(store) if m.in_doubt}
    duplicates = {mid for mid, n in received.items() if n > 1}
    assert duplicates <= in_doubt  # a resend happens only for a send in flight at the kill
    assert len(in_doubt) <= 1 and all(n <= 2 for n in received.values())
    store.close()  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_on_one_postgres_outbox_send_every_message_once(postgres_url: str) -> None:
    store = open_outbox(postgres_url)
    expected = _schedule(store)
    ctx = multiprocessing.get_context("spawn")
    start, handled = ctx.Event(), ctx.Queue()
    with SmtpSink(keep_bodies=False) as sink:
        workers = [
            ctx.Process(
                target=run_worker,
                args=(postgres_url, sink.port, f"w{i}", 60.0, start, handled),
            )
            for i in (1, 2)
        ]
        for worker in workers:
            worker.start()
        time.sleep(3)  # both import and open their store, then claim together
        start.set()
        counts = dict(handled.get(timeout=180) for _ in workers)
        for worker in workers:
            worker.join(60)
            assert worker.exitcode == 0
        received = Counter(sink.handler.message_ids)

    assert sum(counts.values()) == RECIPIENTS
    assert all(n > 0 for n in counts.values()), counts  # both really shared the campaign
    assert set(received) == expected
    assert all(n == 1 for n in received.values()), received.most_common(3)
    assert store.counts() == {"sent": RECIPIENTS}
    assert not any(m.in_doubt for m in _messages(store))
    store.close()  # type: ignore[attr-defined]
