"""SQLite-file adapters of the messaging ports: durable across a ``kill -9`` of the worker.

One small dedicated schema (tables prefixed ``msg_``), WAL journal, explicit ``BEGIN IMMEDIATE``
transactions so several worker processes can share one file. Times are stored as UTC epoch
seconds.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from personify.messaging.item_updates import ChangeKind, ItemChange
from personify.messaging.records import (
    DeliveryStatus,
    InboxEntry,
    JourneyRun,
    OutboxMessage,
    RunStatus,
    TrackedLink,
)

_SCHEMA = """
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


_IN_CHUNK = 500
"""People per ``IN (...)`` list (SQLite allows 999 parameters by default in old builds)."""


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class _SqliteFile:
    """One connection to the messaging database file, serialized by a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_OUTBOX_COLUMNS = (
    "message_id, tenant, user_id, channel, template, dedup_key, context, transactional, purpose,"
    " status, not_before, attempts, lease_until, claim_token, send_started, in_doubt, last_error,"
    " created_at,"
    " sent_at"
)


def _outbox_row(row: tuple[Any, ...]) -> OutboxMessage:
    return OutboxMessage(
        message_id=row[0],
        tenant=row[1],
        user_id=row[2],
        channel=row[3],
        template=row[4],
        dedup_key=row[5],
        context=orjson.loads(row[6]),
        transactional=bool(row[7]),
        purpose=row[8],
        status=DeliveryStatus(row[9]),
        not_before=_dt(row[10]),
        attempts=row[11],
        lease_until=_dt(row[12]),
        claim_token=row[13],
        send_started=bool(row[14]),
        in_doubt=bool(row[15]),
        last_error=row[16],
        created_at=_dt(row[17]),
        sent_at=_dt(row[18]),
    )


class SqliteOutboxStore:
    """The durable outbox; several processes may claim from one file."""

    def __init__(self, path: str | Path) -> None:
        self._db = _SqliteFile(path)

    def close(self) -> None:
        self._db.close()

    def enqueue(self, message: OutboxMessage) -> tuple[OutboxMessage, bool]:
        stored, created = self.enqueue_many([message])
        return stored[0], created[0]

    def enqueue_many(
        self, messages: Sequence[OutboxMessage]
    ) -> tuple[list[OutboxMessage], list[bool]]:
        """Enqueue a batch in one transaction (campaigns); same semantics as :meth:`enqueue`."""
        stored: list[OutboxMessage] = []
        created: list[bool] = []
        with self._db.transaction() as conn:
            for m in messages:
                cursor = conn.execute(
                    f"INSERT OR IGNORE INTO msg_outbox ({_OUTBOX_COLUMNS})"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        m.message_id,
                        m.tenant,
                        m.user_id,
                        m.channel,
                        m.template,
                        m.dedup_key,
                        orjson.dumps(m.context),
                        int(m.transactional),
                        m.purpose,
                        str(m.status),
                        _ts(m.not_before) or 0.0,
                        m.attempts,
                        _ts(m.lease_until),
                        m.claim_token,
                        int(m.send_started),
                        int(m.in_doubt),
                        m.last_error,
                        _ts(m.created_at) or datetime.now(UTC).timestamp(),
                        _ts(m.sent_at),
                    ),
                )
                if cursor.rowcount == 1:
                    stored.append(m)
                    created.append(True)
                else:
                    row = conn.execute(
                        f"SELECT {_OUTBOX_COLUMNS} FROM msg_outbox WHERE tenant=? AND dedup_key=?",
                        (m.tenant, m.dedup_key),
                    ).fetchone()
                    stored.append(_outbox_row(row))
                    created.append(False)
        return stored, created

    def claim(
        self, worker: str, now: datetime, *, limit: int, lease: timedelta
    ) -> list[OutboxMessage]:
        t = now.timestamp()
        with self._db.transaction() as conn:
            rows = conn.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM msg_outbox WHERE"
                " (status IN ('queued','deferred') AND not_before <= ?)"
                " OR (status = 'sending' AND lease_until <= ?)"
                " ORDER BY not_before, rowid LIMIT ?",
                (t, t, limit),
            ).fetchall()
            claimed = []
            lease_until = t + lease.total_seconds()
            for row in rows:
                message = _outbox_row(row)
                if message.status == DeliveryStatus.SENDING:
                    message.in_doubt = message.in_doubt or message.send_started
                message.send_started = False
                message.status = DeliveryStatus.SENDING
                message.lease_until = _dt(lease_until)
                message.claim_token = f"{worker}:{uuid.uuid4().hex}"
                claimed.append(message)
            conn.executemany(
                "UPDATE msg_outbox SET status='sending', lease_until=?, claim_token=?,"
                " send_started=0, in_doubt=? WHERE message_id=?",
                [(lease_until, m.claim_token, int(m.in_doubt), m.message_id) for m in claimed],
            )
        return claimed

    def begin_send(
        self,
        message_id: str,
        claim_token: str,
        links: Mapping[str, TrackedLink] | None = None,
    ) -> bool:
        """"Send started" and the message's tracked links, in one transaction."""
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE msg_outbox SET send_started=1 WHERE message_id=? AND claim_token=?",
                (message_id, claim_token),
            )
            if cursor.rowcount != 1:
                return False
            if links:
                conn.executemany(
                    "INSERT OR REPLACE INTO msg_links VALUES (?,?,?,?,?)",
                    [
                        (message_id, link_id, link.url, link.item_id, link.recommendation_id)
                        for link_id, link in links.items()
                    ],
                )
            return True

    def mark(
        self,
        message_id: str,
        claim_token: str,
        status: DeliveryStatus,
        now: datetime,
        *,
        not_before: datetime | None = None,
        error: str | None = None,
        attempts: int | None = None,
    ) -> bool:
        sent_at = now.timestamp() if status == DeliveryStatus.SENT else None
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE msg_outbox SET status=?, lease_until=NULL, claim_token=NULL, last_error=?,"
                " send_started=0, sent_at=COALESCE(?, sent_at),"
                " not_before=COALESCE(?, not_before), attempts=COALESCE(?, attempts)"
                " WHERE message_id=? AND claim_token=?",
                (str(status), error, sent_at, _ts(not_before), attempts, message_id, claim_token),
            )
            return cursor.rowcount == 1

    def get(self, message_id: str) -> OutboxMessage | None:
        rows = self._db.query(
            f"SELECT {_OUTBOX_COLUMNS} FROM msg_outbox WHERE message_id=?", (message_id,)
        )
        return _outbox_row(rows[0]) if rows else None

    def for_user(self, tenant: str, user_id: str) -> list[OutboxMessage]:
        """Every message queued or sent to the person (data-subject export)."""
        rows = self._db.query(
            f"SELECT {_OUTBOX_COLUMNS} FROM msg_outbox WHERE tenant=? AND user_id=? "
            "ORDER BY created_at", (tenant, user_id),
        )
        return [_outbox_row(r) for r in rows]

    def delete_user(self, tenant: str, user_id: str) -> int:
        """Erasure: the person's messages and their tracked links."""
        with self._db.transaction() as conn:
            conn.execute(
                "DELETE FROM msg_links WHERE message_id IN "
                "(SELECT message_id FROM msg_outbox WHERE tenant=? AND user_id=?)",
                (tenant, user_id),
            )
            cursor = conn.execute(
                "DELETE FROM msg_outbox WHERE tenant=? AND user_id=?", (tenant, user_id)
            )
            return int(cursor.rowcount or 0)

    def count_sent(
        self, tenant: str, user_id: str, channel: str, since: datetime, until: datetime
    ) -> int:
        rows = self._db.query(
            "SELECT COUNT(*) FROM msg_outbox WHERE tenant=? AND user_id=? AND channel=?"
            " AND sent_at >= ? AND sent_at < ? AND status='sent' AND transactional=0",
            (tenant, user_id, channel, since.timestamp(), until.timestamp()),
        )
        return int(rows[0][0])

    def count_sent_many(
        self, tenant: str, channel: str, windows: Mapping[str, tuple[datetime, datetime]]
    ) -> dict[str, int]:
        """:meth:`count_sent` for many people at once (one query per chunk of people), each
        with their own [since, until) window."""
        counts = dict.fromkeys(windows, 0)
        ids = list(windows)
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            since = min(windows[u][0] for u in chunk).timestamp()
            until = max(windows[u][1] for u in chunk).timestamp()
            rows = self._db.query(
                "SELECT user_id, sent_at FROM msg_outbox WHERE tenant=? AND channel=?"
                f" AND user_id IN ({','.join('?' * len(chunk))})"
                " AND sent_at >= ? AND sent_at < ? AND status='sent' AND transactional=0",
                (tenant, channel, *chunk, since, until),
            )
            for user_id, sent_at in rows:
                low, high = windows[user_id]
                if low.timestamp() <= sent_at < high.timestamp():
                    counts[user_id] += 1
        return counts

    def counts(self, tenant: str | None = None) -> dict[str, int]:
        if tenant is None:
            rows = self._db.query("SELECT status, COUNT(*) FROM msg_outbox GROUP BY status")
        else:
            rows = self._db.query(
                "SELECT status, COUNT(*) FROM msg_outbox WHERE tenant=? GROUP BY status", (tenant,)
            )
        return {str(status): int(n) for status, n in rows}

    def save_links(self, message_id: str, links: dict[str, TrackedLink]) -> None:
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO msg_links VALUES (?,?,?,?,?)",
                [
                    (message_id, link_id, link.url, link.item_id, link.recommendation_id)
                    for link_id, link in links.items()
                ],
            )

    def get_link(self, message_id: str, link_id: str) -> TrackedLink | None:
        rows = self._db.query(
            "SELECT url, item_id, recommendation_id FROM msg_links"
            " WHERE message_id=? AND link_id=?",
            (message_id, link_id),
        )
        return TrackedLink(*rows[0]) if rows else None


class SqliteSuppressionStore:
    def __init__(self, path: str | Path) -> None:
        self._db = _SqliteFile(path)

    def delete_user(self, tenant: str, user_id: str) -> int:
        """Erasure: every row of the person."""
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM msg_suppressions WHERE tenant=? AND user_id=?", (tenant, user_id)
            )
            return int(cursor.rowcount or 0)

    def close(self) -> None:
        self._db.close()

    def suppress(self, tenant: str, user_id: str, channel: str, now: datetime, reason: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO msg_suppressions VALUES (?,?,?,?,?)",
                (tenant, user_id, channel, now.timestamp(), reason),
            )

    def is_suppressed(self, tenant: str, user_id: str, channel: str) -> bool:
        rows = self._db.query(
            "SELECT 1 FROM msg_suppressions WHERE tenant=? AND user_id=? AND channel IN (?, '*')"
            " LIMIT 1",
            (tenant, user_id, channel),
        )
        return bool(rows)

    def lift(self, tenant: str, user_id: str, channel: str) -> bool:
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM msg_suppressions WHERE tenant=? AND user_id=? AND channel=?",
                (tenant, user_id, channel),
            )
            return cursor.rowcount > 0


def _inbox_row(row: tuple[Any, ...]) -> InboxEntry:
    return InboxEntry(
        entry_id=row[0],
        tenant=row[1],
        user_id=row[2],
        subject=row[3],
        text=row[4],
        html=row[5],
        data=orjson.loads(row[6]),
        created_at=_dt(row[7]),
        read_at=_dt(row[8]),
    )


class SqliteInboxStore:
    def __init__(self, path: str | Path) -> None:
        self._db = _SqliteFile(path)

    def delete_user(self, tenant: str, user_id: str) -> int:
        """Erasure: every row of the person."""
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM msg_inbox WHERE tenant=? AND user_id=?", (tenant, user_id)
            )
            return int(cursor.rowcount or 0)

    def close(self) -> None:
        self._db.close()

    def add(self, entry: InboxEntry) -> InboxEntry:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO msg_inbox VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    entry.entry_id,
                    entry.tenant,
                    entry.user_id,
                    entry.subject,
                    entry.text,
                    entry.html,
                    orjson.dumps(entry.data),
                    _ts(entry.created_at) or datetime.now(UTC).timestamp(),
                    _ts(entry.read_at),
                ),
            )
            row = conn.execute(
                "SELECT * FROM msg_inbox WHERE entry_id=?", (entry.entry_id,)
            ).fetchone()
        return _inbox_row(row)

    def list(
        self, tenant: str, user_id: str, *, unread_only: bool = False, limit: int = 50
    ) -> list[InboxEntry]:
        sql = "SELECT * FROM msg_inbox WHERE tenant=? AND user_id=?"
        if unread_only:
            sql += " AND read_at IS NULL"
        sql += " ORDER BY created_at DESC, entry_id DESC LIMIT ?"
        return [_inbox_row(r) for r in self._db.query(sql, (tenant, user_id, limit))]

    def mark_read(self, tenant: str, user_id: str, entry_ids: Sequence[str], now: datetime) -> int:
        with self._db.transaction() as conn:
            changed = 0
            for entry_id in entry_ids:
                cursor = conn.execute(
                    "UPDATE msg_inbox SET read_at=? WHERE entry_id=? AND tenant=? AND user_id=?"
                    " AND read_at IS NULL",
                    (now.timestamp(), entry_id, tenant, user_id),
                )
                changed += cursor.rowcount
            return changed


_RUN_COLUMNS = (
    "run_id, tenant, journey, user_id, entered_at, step_index, status, wake_at, exit_reason,"
    " context, updated_at"
)


def _run_row(row: tuple[Any, ...]) -> JourneyRun:
    entered = _dt(row[4])
    assert entered is not None
    return JourneyRun(
        run_id=row[0],
        tenant=row[1],
        journey=row[2],
        user_id=row[3],
        entered_at=entered,
        step_index=row[5],
        status=RunStatus(row[6]),
        wake_at=_dt(row[7]),
        exit_reason=row[8],
        context=orjson.loads(row[9]),
        updated_at=_dt(row[10]),
    )


class SqliteJourneyStateStore:
    def __init__(self, path: str | Path) -> None:
        self._db = _SqliteFile(path)

    def delete_user(self, tenant: str, user_id: str) -> int:
        """Erasure: every row of the person."""
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM msg_journey_runs WHERE tenant=? AND user_id=?", (tenant, user_id)
            )
            return int(cursor.rowcount or 0)

    def close(self) -> None:
        self._db.close()

    def save(self, run: JourneyRun) -> None:
        self.save_many([run])

    def save_many(self, runs: Sequence[JourneyRun]) -> None:
        """Insert or replace every run in one transaction."""
        if not runs:
            return
        with self._db.transaction() as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO msg_journey_runs ({_RUN_COLUMNS})"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        run.run_id,
                        run.tenant,
                        run.journey,
                        run.user_id,
                        run.entered_at.timestamp(),
                        run.step_index,
                        str(run.status),
                        _ts(run.wake_at),
                        run.exit_reason,
                        orjson.dumps(run.context),
                        _ts(run.updated_at),
                    )
                    for run in runs
                ],
            )

    def active(self, tenant: str, user_id: str) -> list[JourneyRun]:
        rows = self._db.query(
            f"SELECT {_RUN_COLUMNS} FROM msg_journey_runs WHERE tenant=? AND user_id=?"
            " AND status='active' ORDER BY entered_at",
            (tenant, user_id),
        )
        return [_run_row(r) for r in rows]

    def latest(self, tenant: str, journey: str, user_id: str) -> JourneyRun | None:
        rows = self._db.query(
            f"SELECT {_RUN_COLUMNS} FROM msg_journey_runs WHERE tenant=? AND journey=?"
            " AND user_id=? ORDER BY entered_at DESC, run_id DESC LIMIT 1",
            (tenant, journey, user_id),
        )
        return _run_row(rows[0]) if rows else None

    def active_many(self, tenant: str, user_ids: Sequence[str]) -> dict[str, list[JourneyRun]]:
        ids = list(dict.fromkeys(user_ids))
        found: dict[str, list[JourneyRun]] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            rows = self._db.query(
                f"SELECT {_RUN_COLUMNS} FROM msg_journey_runs WHERE tenant=? AND status='active'"
                f" AND user_id IN ({','.join('?' * len(chunk))}) ORDER BY entered_at",
                (tenant, *chunk),
            )
            for row in rows:
                found.setdefault(row[3], []).append(_run_row(row))
        return found

    def latest_many(
        self, tenant: str, journeys: Sequence[str], user_ids: Sequence[str]
    ) -> dict[tuple[str, str], JourneyRun]:
        names, ids = list(dict.fromkeys(journeys)), list(dict.fromkeys(user_ids))
        found: dict[tuple[str, str], JourneyRun] = {}
        if not names:
            return found
        step = max(1, _IN_CHUNK - len(names))
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            rows = self._db.query(
                f"SELECT {_RUN_COLUMNS} FROM (SELECT {_RUN_COLUMNS}, ROW_NUMBER() OVER"
                " (PARTITION BY journey, user_id ORDER BY entered_at DESC, run_id DESC) AS rn"
                " FROM msg_journey_runs WHERE tenant=?"
                f" AND journey IN ({','.join('?' * len(names))})"
                f" AND user_id IN ({','.join('?' * len(chunk))})) WHERE rn=1",
                (tenant, *names, *chunk),
            )
            for row in rows:
                found[(row[2], row[3])] = _run_row(row)
        return found

    def due(self, tenant: str, now: datetime, *, limit: int = 1000) -> list[JourneyRun]:
        rows = self._db.query(
            f"SELECT {_RUN_COLUMNS} FROM msg_journey_runs WHERE tenant=? AND status='active'"
            " AND wake_at <= ? ORDER BY wake_at, run_id LIMIT ?",
            (tenant, now.timestamp(), limit),
        )
        return [_run_row(r) for r in rows]


class SqliteItemChangeStore:
    """The item-change queue: leased claims, so several processes can drain one file."""

    def __init__(self, path: str | Path) -> None:
        self._db = _SqliteFile(path)

    def close(self) -> None:
        self._db.close()

    def record(self, changes: Sequence[ItemChange]) -> None:
        if not changes:
            return
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO msg_item_changes (tenant, item_id, kind, at, data)"
                " VALUES (?,?,?,?,?)",
                [
                    (c.tenant, c.item_id, c.kind, c.at.timestamp(), orjson.dumps(c.to_record()))
                    for c in changes
                ],
            )

    def claim(self, now: datetime, *, limit: int, lease: timedelta) -> list[tuple[int, ItemChange]]:
        t = now.timestamp()
        free = "lease_until IS NULL OR lease_until <= ?"
        if not self._db.query(f"SELECT 1 FROM msg_item_changes WHERE {free} LIMIT 1", (t,)):
            return []  # the usual case: no write lock taken every round for nothing
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT change_id, tenant, item_id, kind, at, data FROM msg_item_changes"
                " WHERE lease_until IS NULL OR lease_until <= ? ORDER BY change_id LIMIT ?",
                (t, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE msg_item_changes SET lease_until=? WHERE change_id=?",
                [(t + lease.total_seconds(), row[0]) for row in rows],
            )
        claimed = []
        for change_id, tenant, item_id, kind, at, data in rows:
            extra = orjson.loads(data)
            kind_: ChangeKind = kind
            claimed.append(
                (
                    int(change_id),
                    ItemChange(
                        tenant=tenant,
                        item_id=item_id,
                        kind=kind_,
                        at=datetime.fromtimestamp(at, UTC),
                        title=extra.get("title") or "",
                        old_price=extra.get("old_price"),
                        new_price=extra.get("new_price"),
                        currency=extra.get("currency"),
                    ),
                )
            )
        return claimed

    def done(self, ids: Sequence[int]) -> None:
        with self._db.transaction() as conn:
            conn.executemany(
                "DELETE FROM msg_item_changes WHERE change_id=?", [(i,) for i in ids]
            )

    def prune(self, before: datetime) -> int:
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM msg_item_changes WHERE at < ?", (before.timestamp(),)
            )
            return int(cursor.rowcount or 0)


class SqliteItemViewStore:
    """Latest view time per (tenant, item, person), for price-drop / restock audiences."""

    def __init__(self, path: str | Path) -> None:
        self._db = _SqliteFile(path)

    def close(self) -> None:
        self._db.close()

    def record_views(self, tenant: str, views: Sequence[tuple[str, str, datetime]]) -> None:
        if not views:
            return
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO msg_item_views VALUES (?,?,?,?)"
                " ON CONFLICT (tenant, item_id, user_id)"
                " DO UPDATE SET viewed_at = MAX(viewed_at, excluded.viewed_at)",
                [(tenant, item_id, user_id, at.timestamp()) for item_id, user_id, at in views],
            )

    def viewers(self, tenant: str, item_id: str, since: datetime, *, limit: int) -> list[str]:
        rows = self._db.query(
            "SELECT user_id FROM msg_item_views WHERE tenant=? AND item_id=? AND viewed_at >= ?"
            " ORDER BY viewed_at DESC, user_id LIMIT ?",
            (tenant, item_id, since.timestamp(), limit),
        )
        return [str(row[0]) for row in rows]

    def prune(self, before: datetime) -> int:
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM msg_item_views WHERE viewed_at < ?", (before.timestamp(),)
            )
            return int(cursor.rowcount or 0)

    def delete_user(self, tenant: str, user_id: str) -> int:
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM msg_item_views WHERE tenant=? AND user_id=?", (tenant, user_id)
            )
            return int(cursor.rowcount or 0)

    def backfilled(self, tenant: str) -> bool:
        return bool(
            self._db.query("SELECT 1 FROM msg_item_view_backfills WHERE tenant=?", (tenant,))
        )

    def mark_backfilled(self, tenant: str, at: datetime) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO msg_item_view_backfills VALUES (?,?)",
                (tenant, at.timestamp()),
            )
