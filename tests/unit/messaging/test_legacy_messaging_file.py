"""A messaging file written by an earlier release (its own ``msg_*`` tables, times as REAL epoch
seconds, JSON as BLOB) is adopted when opened: every row readable through the stores, the
legacy tables gone, a second open a no-op; the file keeps its name ``<name>.messaging.db``."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from personify.messaging.records import DeliveryStatus, RunStatus
from personify.messaging.state_stores import adopt_legacy, messaging_db_path, open_state_file

LEGACY_SCHEMA = """
CREATE TABLE IF NOT EXISTS msg_outbox (
    message_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    template TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    context BLOB NOT NULL,
    transactional INTEGER NOT NULL,
    purpose TEXT,
    status TEXT NOT NULL,
    not_before REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until REAL,
    claim_token TEXT,
    send_started INTEGER NOT NULL DEFAULT 0,
    in_doubt INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    sent_at REAL,
    UNIQUE (tenant, dedup_key)
);
CREATE INDEX IF NOT EXISTS msg_outbox_due ON msg_outbox (status, not_before);
CREATE INDEX IF NOT EXISTS msg_outbox_sent ON msg_outbox (tenant, user_id, channel, sent_at);
CREATE TABLE IF NOT EXISTS msg_links (
    message_id TEXT NOT NULL,
    link_id TEXT NOT NULL,
    url TEXT NOT NULL,
    item_id TEXT,
    recommendation_id TEXT,
    PRIMARY KEY (message_id, link_id)
);
CREATE TABLE IF NOT EXISTS msg_suppressions (
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_at REAL NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (tenant, user_id, channel)
);
CREATE TABLE IF NOT EXISTS msg_inbox (
    entry_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    text TEXT NOT NULL,
    html TEXT NOT NULL,
    data BLOB NOT NULL,
    created_at REAL NOT NULL,
    read_at REAL
);
CREATE INDEX IF NOT EXISTS msg_inbox_user ON msg_inbox (tenant, user_id, created_at);
CREATE TABLE IF NOT EXISTS msg_journey_runs (
    run_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    journey TEXT NOT NULL,
    user_id TEXT NOT NULL,
    entered_at REAL NOT NULL,
    step_index INTEGER NOT NULL,
    status TEXT NOT NULL,
    wake_at REAL,
    exit_reason TEXT,
    context BLOB NOT NULL,
    updated_at REAL
);
CREATE INDEX IF NOT EXISTS msg_runs_user ON msg_journey_runs (tenant, user_id, status);
CREATE INDEX IF NOT EXISTS msg_runs_due ON msg_journey_runs (tenant, status, wake_at);
CREATE TABLE IF NOT EXISTS msg_item_changes (
    change_id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    data BLOB NOT NULL,
    lease_until REAL
);
CREATE INDEX IF NOT EXISTS msg_item_changes_at ON msg_item_changes (at);
CREATE TABLE IF NOT EXISTS msg_item_views (
    tenant TEXT NOT NULL,
    item_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    viewed_at REAL NOT NULL,
    PRIMARY KEY (tenant, item_id, user_id)
);
CREATE INDEX IF NOT EXISTS msg_item_views_at ON msg_item_views (viewed_at);
CREATE INDEX IF NOT EXISTS msg_item_views_user ON msg_item_views (tenant, user_id);
CREATE TABLE IF NOT EXISTS msg_item_view_backfills (
    tenant TEXT PRIMARY KEY,
    at REAL NOT NULL
);
"""

SENT = datetime(2026, 3, 2, 9, 30, 15, 250000, tzinfo=UTC)
DUE = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)


def _legacy_file(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(LEGACY_SCHEMA)
    t, d = SENT.timestamp(), DUE.timestamp()
    ctx = orjson.dumps({"subject": "hi"})
    for n, (status, sent, not_before) in enumerate((("sent", t, t), ("queued", None, d))):
        conn.execute(
            "INSERT INTO msg_outbox VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (f"m{n}", "shop", "ann", "email", "news", f"k{n}", ctx, 0, "email_marketing", status,
             not_before, 1, None, None, 0, 0, None, t, sent),
        )
    conn.execute("INSERT INTO msg_links VALUES ('m0', 'l1', 'https://x/1', 'i1', 'r1')")
    conn.execute("INSERT INTO msg_suppressions VALUES ('shop', 'bob', '*', ?, 'unsubscribed')",
                 (t,))
    conn.execute("INSERT INTO msg_inbox VALUES ('e1','shop','ann','Hi','text','<p>',?,?,NULL)",
                 (orjson.dumps({"k": 1}), t))
    conn.execute("INSERT INTO msg_journey_runs VALUES ('r1','shop','welcome','ann',?,1,'active',"
                 "?,NULL,?,?)", (t, d, orjson.dumps({"events": []}), t))
    conn.execute("INSERT INTO msg_item_changes (tenant, item_id, kind, at, data) "
                 "VALUES ('shop','i1','price_dropped',?,?)",
                 (t, orjson.dumps({"title": "Lamp", "old_price": 10.0, "new_price": 8.0})))
    conn.execute("INSERT INTO msg_item_views VALUES ('shop','i1','ann',?)", (t,))
    conn.execute("INSERT INTO msg_item_view_backfills VALUES ('shop',?)", (t,))
    conn.commit()
    conn.close()


def test_a_legacy_messaging_file_is_adopted_once(tmp_path: Path) -> None:
    path = tmp_path / "shop.messaging.db"
    assert messaging_db_path(f"sqlite:///{tmp_path / 'shop.db'}") == str(path)
    _legacy_file(path)

    state = open_state_file(path)
    try:
        sent = state.outbox.get("m0")
        assert sent is not None and sent.status == DeliveryStatus.SENT
        assert sent.sent_at == SENT and sent.context == {"subject": "hi"}
        assert sent.purpose == "email_marketing" and sent.attempts == 1
        assert state.outbox.counts("shop") == {"sent": 1, "queued": 1}
        assert state.outbox.count_sent("shop", "ann", "email", SENT, SENT + timedelta(1)) == 1
        link = state.outbox.get_link("m0", "l1")
        assert link is not None and link.url == "https://x/1"
        # the queued message is claimed when due, as before the upgrade
        assert state.outbox.claim("w", DUE - timedelta(seconds=1), limit=5,
                                  lease=timedelta(minutes=1)) == []
        [claimed] = state.outbox.claim("w", DUE, limit=5, lease=timedelta(minutes=1))
        assert claimed.message_id == "m1"
        assert state.suppressions.is_suppressed("shop", "bob", "email")
        [entry] = state.inbox.list("shop", "ann")
        assert entry.data == {"k": 1} and entry.created_at == SENT and entry.read_at is None
        run = state.runs.latest("shop", "welcome", "ann")
        assert run is not None and run.status == RunStatus.ACTIVE and run.wake_at == DUE
        assert [r.run_id for r in state.runs.due("shop", DUE)] == ["r1"]
        [(_, change)] = state.item_changes.claim(DUE, limit=5, lease=timedelta(minutes=1))
        assert (change.item_id, change.old_price, change.new_price) == ("i1", 10.0, 8.0)
        assert state.item_views.viewers("shop", "i1", SENT, limit=5) == ["ann"]
        assert state.item_views.backfilled("shop")
        database = state.outbox._db  # type: ignore[attr-defined]
        assert adopt_legacy(database) == 0  # the legacy tables are gone: a second open adopts none
    finally:
        state.outbox.close()  # type: ignore[attr-defined]
    with sqlite3.connect(path) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert not {name for name in tables if name.startswith("msg_")}
    again = open_state_file(path)  # reopening keeps the adopted rows
    try:
        assert again.outbox.counts("shop") == {"sent": 1, "sending": 1}
    finally:
        again.outbox.close()  # type: ignore[attr-defined]
