"""A worker process killed with SIGKILL mid-campaign loses and duplicates nothing.

The outbox lives in a SQLite file, the SMTP sink (aiosmtpd) in this process, the worker in a
spawned child. After the kill a fresh worker takes over once the dead worker's leases expire.
Every Message-ID must reach the sink; a Message-ID may arrive twice only if the outbox flagged
that message ``in_doubt`` (its send had started when the worker died), at most one per kill.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytest.importorskip("aiosmtpd")

from personify.domain.users import User
from personify.messaging.campaigns import Campaign, schedule_campaign
from personify.messaging.guardrails import FrequencyCap, Guardrails
from personify.messaging.smtp_sink import SmtpSink
from personify.messaging.sqlite_stores import SqliteOutboxStore

RECIPIENTS = 200
LEASE_S = 1.0


def _users() -> dict[str, User]:
    return {
        f"u{i}": User(user_id=f"u{i}", profile={"name": f"Person {i}",
                                                "email": f"u{i}@example.com"})
        for i in range(RECIPIENTS)
    }


def run_worker(db: str, port: int, worker_id: str) -> None:
    """Child process: send everything that is due, then exit."""
    from datetime import timedelta

    from personify.domain.items import Item
    from personify.messaging.memory_stores import MemorySuppressionStore
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
        store=SqliteOutboxStore(db),
        templates=lambda t, n: template,
        users=lambda t, u: users.get(u),
        senders={"email": SmtpSender(SmtpConfig(port=port))},
        consent=lambda t, u, p: True,
        suppressions=MemorySuppressionStore(),
        recommend=lambda t, u, n: [Item(item_id=f"{u}-{k}", title=f"item {k}") for k in range(n)],
        guardrails=Guardrails(caps=FrequencyCap({}), quiet_hours=None),
        worker_id=worker_id,
        lease=timedelta(seconds=LEASE_S),
        batch_size=25,
    )
    worker.run_until_idle()
    worker.close()


def _pending(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(
            "SELECT COUNT(*) FROM msg_outbox WHERE status IN ('queued','sending','deferred')"
        ).fetchone()[0])


@pytest.mark.slow
def test_sigkill_mid_campaign_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "outbox.sqlite"
    store = SqliteOutboxStore(db)
    # due long ago by any clock: the workers are other processes, with the real wall clock
    scheduled = datetime(2026, 1, 1, 12, tzinfo=UTC)
    campaign = Campaign(name="spring", template="news", send_at=scheduled)
    assert schedule_campaign(store, "shop", campaign, _users().values(),
                             now=scheduled) == RECIPIENTS
    expected = {
        f"<{m}@personify.local>"
        for (m,) in sqlite3.connect(db).execute("SELECT message_id FROM msg_outbox")
    }
    ctx = multiprocessing.get_context("spawn")
    with SmtpSink(keep_bodies=False) as sink:
        first = ctx.Process(target=run_worker, args=(str(db), sink.port, "w1"))
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
        assert _pending(db) > 0

        time.sleep(LEASE_S + 0.2)  # the dead worker's leases expire
        second = ctx.Process(target=run_worker, args=(str(db), sink.port, "w2"))
        second.start()
        second.join(120)
        assert second.exitcode == 0
        received = Counter(sink.handler.message_ids)

    assert set(received) == expected  # nothing lost
    assert store.counts() == {"sent": RECIPIENTS}
    in_doubt = {
        f"<{m}@personify.local>"
        for (m,) in sqlite3.connect(db).execute("SELECT message_id FROM msg_outbox WHERE in_doubt")
    }
    duplicates = {mid for mid, n in received.items() if n > 1}
    assert duplicates <= in_doubt  # a resend happens only for a send in flight at the kill
    assert len(in_doubt) <= 1 and all(n <= 2 for n in received.values())
    store.close()
