"""SQL adapters of the messaging ports, for every database: PostgreSQL, a SQLite deployment's
messaging file and SQLite in memory (:mod:`personify.messaging.state_stores` picks the database).

They keep the messaging state in the tables of ``personify.storage.sql.messaging_tables``
(migration ``0006_messaging_state``), so several machines pointed at one PostgreSQL database
share one outbox. The outbox claim takes its rows with ``SELECT ... FOR UPDATE SKIP LOCKED``
on PostgreSQL (two workers never lease the same message; a worker blocked on nothing) and under
SQLite's writer lock (``BEGIN IMMEDIATE``) otherwise. Crash safety: a claim leases its messages
under a fresh claim token; "send started" is committed before the send and the result after it,
both conditional on the token, so a worker killed at any point leaves each message either
unsent (claimed again after the lease) or marked in doubt (resent once, flagged).

The statements run for every message (unsubscribe check, "send started", tracked links, result)
are built once and :class:`~personify.storage.sql.prepared.Prepared` (run on the SQLite driver's
connection: SQLAlchemy's per-statement machinery costs more than such a statement on a local
file, see ``docs/benchmarks/messaging_state.md``).
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from personify.messaging.item_updates import ChangeKind, ItemChange
from personify.messaging.records import (
    DeliveryStatus,
    InboxEntry,
    JourneyRun,
    OutboxMessage,
    RunStatus,
    TrackedLink,
)
from personify.storage.sql._columns import EPOCH, UtcDateTime
from personify.storage.sql._dialect import upsert_insert
from personify.storage.sql.database import Database
from personify.storage.sql.messaging_tables import (
    msg_inbox,
    msg_item_changes,
    msg_item_view_backfills,
    msg_item_views,
    msg_journey_runs,
    msg_links,
    msg_outbox,
    msg_suppressions,
)
from personify.storage.sql.prepared import Prepared

_IN_CHUNK = 500
"""People per ``IN (...)`` list."""
_CLAIMABLE = (DeliveryStatus.QUEUED.value, DeliveryStatus.DEFERRED.value)


# -- the worker's per-message statements, built once: building a Core statement (coercing its
# clauses, computing its cache key) costs several times what SQLite takes to run it, and the
# worker runs these for every message it sends

_o = msg_outbox
_CLAIM = (
    sa.select(_o)
    .where(
        sa.or_(
            sa.and_(_o.c.status.in_(_CLAIMABLE), _o.c.not_before <= sa.bindparam("now")),
            sa.and_(
                _o.c.status == DeliveryStatus.SENDING.value,
                _o.c.lease_until <= sa.bindparam("now"),
            ),
        )
    )
    .order_by(_o.c.not_before, _o.c.seq)
    .limit(sa.bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_LEASE = (
    _o.update()
    .where(_o.c.message_id == sa.bindparam("m_id"))
    .values(
        status=DeliveryStatus.SENDING.value,
        lease_until=sa.bindparam("m_lease_until"),
        claim_token=sa.bindparam("m_token"),
        send_started=False,
        in_doubt=sa.bindparam("m_doubt"),
    )
)
_BEGIN_SEND = Prepared(
    _o.update()
    .where(_o.c.message_id == sa.bindparam("m_id"), _o.c.claim_token == sa.bindparam("m_token"))
    .values(send_started=True)
)
_MARK = Prepared(
    _o.update()
    .where(_o.c.message_id == sa.bindparam("m_id"), _o.c.claim_token == sa.bindparam("m_token"))
    .values(
        status=sa.bindparam("m_status"),
        lease_until=None,
        claim_token=None,
        last_error=sa.bindparam("m_error"),
        send_started=False,
        # unchanged where the outcome gives none
        sent_at=sa.func.coalesce(sa.bindparam("m_sent_at", type_=UtcDateTime()), _o.c.sent_at),
        not_before=sa.func.coalesce(
            sa.bindparam("m_not_before", type_=UtcDateTime()), _o.c.not_before
        ),
        attempts=sa.func.coalesce(sa.bindparam("m_attempts", type_=sa.Integer()), _o.c.attempts),
    )
)
_SENT_IN_WINDOW = sa.select(_o.c.user_id, _o.c.sent_at).where(
    _o.c.tenant == sa.bindparam("tenant"),
    _o.c.channel == sa.bindparam("channel"),
    _o.c.status == DeliveryStatus.SENT.value,
    _o.c.transactional.is_(False),
    _o.c.user_id.in_(sa.bindparam("user_ids", expanding=True)),
    _o.c.sent_at >= sa.bindparam("since"),
    _o.c.sent_at < sa.bindparam("until"),
)
_s = msg_suppressions
_IS_SUPPRESSED = Prepared(
    sa.select(sa.literal(1))
    .where(
        _s.c.tenant == sa.bindparam("tenant"),
        _s.c.user_id == sa.bindparam("user_id"),
        _s.c.channel.in_((sa.bindparam("channel"), "*")),
    )
    .limit(1)
)


@functools.cache
def _save_links_statement(dialect: str) -> Prepared:
    statement = upsert_insert(dialect, msg_links)
    return Prepared(statement.on_conflict_do_update(
        index_elements=[msg_links.c.message_id, msg_links.c.link_id],
        set_={
            "url": statement.excluded.url,
            "item_id": statement.excluded.item_id,
            "recommendation_id": statement.excluded.recommendation_id,
        },
    ))


class _SqlStore:
    """A store on a shared :class:`Database`; ``close()`` disposes it only when it owns it."""

    def __init__(self, database: Database, *, owns_database: bool = False) -> None:
        self._db = database
        self._owns = owns_database

    def close(self) -> None:
        if self._owns:
            self._db.dispose()


def _outbox_row(row: Any) -> OutboxMessage:
    return OutboxMessage(
        message_id=row.message_id,
        tenant=row.tenant,
        user_id=row.user_id,
        channel=row.channel,
        template=row.template,
        dedup_key=row.dedup_key,
        context=orjson.loads(row.context),
        transactional=bool(row.transactional),
        purpose=row.purpose,
        status=DeliveryStatus(row.status),
        not_before=row.not_before,
        attempts=row.attempts,
        lease_until=row.lease_until,
        claim_token=row.claim_token,
        send_started=bool(row.send_started),
        in_doubt=bool(row.in_doubt),
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


def _outbox_values(m: OutboxMessage) -> dict[str, Any]:
    return {
        "message_id": m.message_id,
        "tenant": m.tenant,
        "user_id": m.user_id,
        "channel": m.channel,
        "template": m.template,
        "dedup_key": m.dedup_key,
        "context": orjson.dumps(m.context).decode(),
        "transactional": m.transactional,
        "purpose": m.purpose,
        "status": str(m.status),
        "not_before": m.not_before or EPOCH,
        "attempts": m.attempts,
        "lease_until": m.lease_until,
        "claim_token": m.claim_token,
        "send_started": m.send_started,
        "in_doubt": m.in_doubt,
        "last_error": m.last_error,
        "created_at": m.created_at or datetime.now(UTC),
        "sent_at": m.sent_at,
    }


def _link_rows(message_id: str, links: Mapping[str, TrackedLink]) -> list[dict[str, Any]]:
    return [
        {
            "message_id": message_id,
            "link_id": link_id,
            "url": link.url,
            "item_id": link.item_id,
            "recommendation_id": link.recommendation_id,
        }
        for link_id, link in links.items()
    ]


T = TypeVar("T")
log = logging.getLogger(__name__)
DISCONNECT_RETRIES = 3


def retry_on_disconnect(unit: Callable[[], T], *, retries: int = DISCONNECT_RETRIES) -> T:
    """Run ``unit`` (one idempotent transaction) again when the database connection was lost
    under it (a restarted server, a terminated backend, a failover): the pool drops the dead
    connection and the retry opens a new one. Used for the outbox's fencing writes, so a worker
    that loses its connection between a send and its mark still records the send (else the
    message would be resent after its lease as in doubt)."""
    for attempt in range(retries + 1):
        try:
            return unit()
        except sa.exc.DBAPIError as exc:
            if not exc.connection_invalidated or attempt == retries:
                raise
            log.warning("database connection lost; retrying (%d/%d)", attempt + 1, retries)
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


class SqlOutboxStore(_SqlStore):
    """The durable outbox in the database; any number of processes may claim from it."""

    def enqueue(self, message: OutboxMessage) -> tuple[OutboxMessage, bool]:
        stored, created = self.enqueue_many([message])
        return stored[0], created[0]

    def enqueue_many(
        self, messages: Sequence[OutboxMessage]
    ) -> tuple[list[OutboxMessage], list[bool]]:
        """Enqueue a batch in one transaction; a (tenant, dedup_key) already stored is kept."""
        if not messages:
            return [], []
        t = msg_outbox
        inserted: set[str] = set()
        with self._db.write() as conn:
            # one compiled statement, executed for every row (SQLAlchemy batches the rows
            # into multi-row INSERTs with RETURNING: "insertmanyvalues")
            insert = upsert_insert(self._db.dialect, t).on_conflict_do_nothing()
            statement = insert.returning(t.c.message_id)
            rows = conn.execute(statement, [_outbox_values(m) for m in messages])
            inserted.update(row[0] for row in rows)
            existing = self._by_dedup_key(
                conn, [m for m in messages if m.message_id not in inserted]
            )
        stored: list[OutboxMessage] = []
        created: list[bool] = []
        for m in messages:
            key = (m.tenant, m.dedup_key)
            if m.message_id in inserted and key not in existing:
                existing[key] = m  # a repeat inside the batch finds this one stored
                stored.append(m)
                created.append(True)
            else:
                stored.append(existing.get(key, m))
                created.append(False)
        return stored, created

    def _by_dedup_key(
        self, conn: Connection, messages: Sequence[OutboxMessage]
    ) -> dict[tuple[str, str], OutboxMessage]:
        t = msg_outbox
        keys: dict[str, list[str]] = {}
        for m in messages:
            keys.setdefault(m.tenant, []).append(m.dedup_key)
        found: dict[tuple[str, str], OutboxMessage] = {}
        for tenant, dedup_keys in keys.items():
            unique = list(dict.fromkeys(dedup_keys))
            for start in range(0, len(unique), _IN_CHUNK):
                rows = conn.execute(
                    sa.select(t).where(
                        t.c.tenant == tenant, t.c.dedup_key.in_(unique[start : start + _IN_CHUNK])
                    )
                )
                for row in rows:
                    found[(row.tenant, row.dedup_key)] = _outbox_row(row)
        return found

    def claim(
        self, worker: str, now: datetime, *, limit: int, lease: timedelta
    ) -> list[OutboxMessage]:
        lease_until = now + lease
        claimed: list[OutboxMessage] = []
        with self._db.write() as conn:
            for row in conn.execute(_CLAIM, {"now": now, "limit": limit}):
                message = _outbox_row(row)
                if message.status == DeliveryStatus.SENDING:
                    message.in_doubt = message.in_doubt or message.send_started
                message.send_started = False
                message.status = DeliveryStatus.SENDING
                message.lease_until = lease_until
                message.claim_token = f"{worker}:{uuid.uuid4().hex}"
                claimed.append(message)
            if claimed:
                conn.execute(
                    _LEASE,
                    [
                        {
                            "m_id": m.message_id,
                            "m_lease_until": lease_until,
                            "m_token": m.claim_token,
                            "m_doubt": m.in_doubt,
                        }
                        for m in claimed
                    ],
                )
        return claimed

    def begin_send(
        self,
        message_id: str,
        claim_token: str,
        links: Mapping[str, TrackedLink] | None = None,
    ) -> bool:
        """ "Send started" and the message's tracked links, in one transaction (retried on a
        lost connection: it is idempotent under the claim token)."""

        def unit() -> bool:
            with self._db.prepared_write() as run:
                if run.execute(_BEGIN_SEND, {"m_id": message_id, "m_token": claim_token}) != 1:
                    return False
                if links:
                    run.executemany(
                        _save_links_statement(self._db.dialect), _link_rows(message_id, links)
                    )
                return True

        return retry_on_disconnect(unit)

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
        params = {
            "m_id": message_id,
            "m_token": claim_token,
            "m_status": str(status),
            "m_error": error,
            "m_sent_at": now if status == DeliveryStatus.SENT else None,
            "m_not_before": not_before,
            "m_attempts": attempts,
        }

        def unit() -> bool:  # conditional on the claim token: a retry after a commit is a no-op
            with self._db.prepared_write() as run:
                return run.execute(_MARK, params) == 1

        return retry_on_disconnect(unit)

    def get(self, message_id: str) -> OutboxMessage | None:
        with self._db.read() as conn:
            row = conn.execute(
                sa.select(msg_outbox).where(msg_outbox.c.message_id == message_id)
            ).first()
        return _outbox_row(row) if row is not None else None

    def for_user(self, tenant: str, user_id: str) -> list[OutboxMessage]:
        """Every message queued or sent to the person (data-subject export)."""
        t = msg_outbox
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(t)
                .where(t.c.tenant == tenant, t.c.user_id == user_id)
                .order_by(t.c.created_at, t.c.seq)
            ).all()
        return [_outbox_row(r) for r in rows]

    def delete_user(self, tenant: str, user_id: str) -> int:
        """Erasure: the person's messages and their tracked links."""
        t = msg_outbox
        mine = sa.select(t.c.message_id).where(t.c.tenant == tenant, t.c.user_id == user_id)
        with self._db.write() as conn:
            conn.execute(msg_links.delete().where(msg_links.c.message_id.in_(mine)))
            result = conn.execute(t.delete().where(t.c.tenant == tenant, t.c.user_id == user_id))
            return int(result.rowcount or 0)

    def _sent(self, tenant: str, channel: str) -> sa.ColumnElement[bool]:
        t = msg_outbox
        return sa.and_(
            t.c.tenant == tenant,
            t.c.channel == channel,
            t.c.status == DeliveryStatus.SENT.value,
            t.c.transactional.is_(False),
        )

    def count_sent(
        self, tenant: str, user_id: str, channel: str, since: datetime, until: datetime
    ) -> int:
        t = msg_outbox
        with self._db.read() as conn:
            n = conn.execute(
                sa.select(sa.func.count())
                .select_from(t)
                .where(
                    self._sent(tenant, channel),
                    t.c.user_id == user_id,
                    t.c.sent_at >= since,
                    t.c.sent_at < until,
                )
            ).scalar_one()
        return int(n)

    def count_sent_many(
        self, tenant: str, channel: str, windows: Mapping[str, tuple[datetime, datetime]]
    ) -> dict[str, int]:
        """:meth:`count_sent` for many people (one query per chunk), each with their window."""
        counts = dict.fromkeys(windows, 0)
        ids = list(windows)
        with self._db.read() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                since = min(windows[u][0] for u in chunk)
                until = max(windows[u][1] for u in chunk)
                rows = conn.execute(
                    _SENT_IN_WINDOW,
                    {
                        "tenant": tenant,
                        "channel": channel,
                        "user_ids": chunk,
                        "since": since,
                        "until": until,
                    },
                )
                for user_id, sent_at in rows:
                    low, high = windows[user_id]
                    if low <= sent_at < high:
                        counts[user_id] += 1
        return counts

    def counts(self, tenant: str | None = None) -> dict[str, int]:
        t = msg_outbox
        query = sa.select(t.c.status, sa.func.count()).group_by(t.c.status)
        if tenant is not None:
            query = query.where(t.c.tenant == tenant)
        with self._db.read() as conn:
            return {str(status): int(n) for status, n in conn.execute(query)}

    def save_links(self, message_id: str, links: dict[str, TrackedLink]) -> None:
        if not links:
            return
        with self._db.prepared_write() as run:
            run.executemany(_save_links_statement(self._db.dialect), _link_rows(message_id, links))

    def get_link(self, message_id: str, link_id: str) -> TrackedLink | None:
        t = msg_links
        with self._db.read() as conn:
            row = conn.execute(
                sa.select(t.c.url, t.c.item_id, t.c.recommendation_id).where(
                    t.c.message_id == message_id, t.c.link_id == link_id
                )
            ).first()
        return TrackedLink(row.url, row.item_id, row.recommendation_id) if row else None


class SqlSuppressionStore(_SqlStore):
    """Who unsubscribed from what, in the database."""

    def delete_user(self, tenant: str, user_id: str) -> int:
        t = msg_suppressions
        with self._db.write() as conn:
            result = conn.execute(t.delete().where(t.c.tenant == tenant, t.c.user_id == user_id))
            return int(result.rowcount or 0)

    def suppress(self, tenant: str, user_id: str, channel: str, now: datetime, reason: str) -> None:
        statement = upsert_insert(self._db.dialect, msg_suppressions).values(
            tenant=tenant, user_id=user_id, channel=channel, created_at=now, reason=reason
        )
        with self._db.write() as conn:
            conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["tenant", "user_id", "channel"],
                    set_={"created_at": now, "reason": reason},
                )
            )

    def is_suppressed(self, tenant: str, user_id: str, channel: str) -> bool:
        params = {"tenant": tenant, "user_id": user_id, "channel": channel}
        with self._db.prepared_read() as run:
            return run.exists(_IS_SUPPRESSED, params)

    def lift(self, tenant: str, user_id: str, channel: str) -> bool:
        t = msg_suppressions
        with self._db.write() as conn:
            result = conn.execute(
                t.delete().where(
                    t.c.tenant == tenant, t.c.user_id == user_id, t.c.channel == channel
                )
            )
            return bool(result.rowcount)


def _inbox_row(row: Any) -> InboxEntry:
    return InboxEntry(
        entry_id=row.entry_id,
        tenant=row.tenant,
        user_id=row.user_id,
        subject=row.subject,
        text=row.text,
        html=row.html,
        data=orjson.loads(row.data),
        created_at=row.created_at,
        read_at=row.read_at,
    )


class SqlInboxStore(_SqlStore):
    """In-app messages, in the database."""

    def delete_user(self, tenant: str, user_id: str) -> int:
        t = msg_inbox
        with self._db.write() as conn:
            result = conn.execute(t.delete().where(t.c.tenant == tenant, t.c.user_id == user_id))
            return int(result.rowcount or 0)

    def add(self, entry: InboxEntry) -> InboxEntry:
        t = msg_inbox
        statement = upsert_insert(self._db.dialect, t).values(
            entry_id=entry.entry_id,
            tenant=entry.tenant,
            user_id=entry.user_id,
            subject=entry.subject,
            text=entry.text,
            html=entry.html,
            data=orjson.dumps(entry.data).decode(),
            created_at=entry.created_at or datetime.now(UTC),
            read_at=entry.read_at,
        )
        with self._db.write() as conn:
            conn.execute(statement.on_conflict_do_nothing())
            row = conn.execute(sa.select(t).where(t.c.entry_id == entry.entry_id)).one()
        return _inbox_row(row)

    def list(
        self, tenant: str, user_id: str, *, unread_only: bool = False, limit: int = 50
    ) -> list[InboxEntry]:
        t = msg_inbox
        query = sa.select(t).where(t.c.tenant == tenant, t.c.user_id == user_id)
        if unread_only:
            query = query.where(t.c.read_at.is_(None))
        query = query.order_by(t.c.created_at.desc(), t.c.entry_id.desc()).limit(limit)
        with self._db.read() as conn:
            return [_inbox_row(r) for r in conn.execute(query)]

    def mark_read(self, tenant: str, user_id: str, entry_ids: Sequence[str], now: datetime) -> int:
        t = msg_inbox
        ids = list(dict.fromkeys(entry_ids))
        if not ids:
            return 0
        with self._db.write() as conn:
            result = conn.execute(
                t.update()
                .where(
                    t.c.tenant == tenant,
                    t.c.user_id == user_id,
                    t.c.entry_id.in_(ids),
                    t.c.read_at.is_(None),
                )
                .values(read_at=now)
            )
            return int(result.rowcount or 0)


def _run_row(row: Any) -> JourneyRun:
    return JourneyRun(
        run_id=row.run_id,
        tenant=row.tenant,
        journey=row.journey,
        user_id=row.user_id,
        entered_at=row.entered_at,
        step_index=row.step_index,
        status=RunStatus(row.status),
        wake_at=row.wake_at,
        exit_reason=row.exit_reason,
        context=orjson.loads(row.context),
        updated_at=row.updated_at,
    )


_RUN_FIELDS = (
    "tenant",
    "journey",
    "user_id",
    "entered_at",
    "step_index",
    "status",
    "wake_at",
    "exit_reason",
    "context",
    "updated_at",
)


class SqlJourneyStateStore(_SqlStore):
    """Journey runs, in the database."""

    def delete_user(self, tenant: str, user_id: str) -> int:
        t = msg_journey_runs
        with self._db.write() as conn:
            result = conn.execute(t.delete().where(t.c.tenant == tenant, t.c.user_id == user_id))
            return int(result.rowcount or 0)

    def save(self, run: JourneyRun) -> None:
        self.save_many([run])

    def save_many(self, runs: Sequence[JourneyRun]) -> None:
        """Insert or replace every run in one transaction."""
        if not runs:
            return
        latest = {run.run_id: run for run in runs}  # the last save of a run wins
        rows = [
            {
                "run_id": run.run_id,
                "tenant": run.tenant,
                "journey": run.journey,
                "user_id": run.user_id,
                "entered_at": run.entered_at,
                "step_index": run.step_index,
                "status": str(run.status),
                "wake_at": run.wake_at,
                "exit_reason": run.exit_reason,
                "context": orjson.dumps(run.context).decode(),
                "updated_at": run.updated_at,
            }
            for run in latest.values()
        ]
        statement = upsert_insert(self._db.dialect, msg_journey_runs)
        statement = statement.on_conflict_do_update(
            index_elements=["run_id"],
            set_={name: getattr(statement.excluded, name) for name in _RUN_FIELDS},
        )
        with self._db.write() as conn:
            for start in range(0, len(rows), _IN_CHUNK):
                conn.execute(statement, rows[start : start + _IN_CHUNK])

    def active(self, tenant: str, user_id: str) -> list[JourneyRun]:
        return self.active_many(tenant, [user_id]).get(user_id, [])

    def active_many(self, tenant: str, user_ids: Sequence[str]) -> dict[str, list[JourneyRun]]:
        t = msg_journey_runs
        ids = list(dict.fromkeys(user_ids))
        found: dict[str, list[JourneyRun]] = {}
        with self._db.read() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                rows = conn.execute(
                    sa.select(t)
                    .where(
                        t.c.tenant == tenant,
                        t.c.status == RunStatus.ACTIVE.value,
                        t.c.user_id.in_(ids[start : start + _IN_CHUNK]),
                    )
                    .order_by(t.c.entered_at, t.c.run_id)
                )
                for row in rows:
                    found.setdefault(row.user_id, []).append(_run_row(row))
        return found

    def latest(self, tenant: str, journey: str, user_id: str) -> JourneyRun | None:
        return self.latest_many(tenant, [journey], [user_id]).get((journey, user_id))

    def latest_many(
        self, tenant: str, journeys: Sequence[str], user_ids: Sequence[str]
    ) -> dict[tuple[str, str], JourneyRun]:
        t = msg_journey_runs
        names, ids = list(dict.fromkeys(journeys)), list(dict.fromkeys(user_ids))
        found: dict[tuple[str, str], JourneyRun] = {}
        if not names:
            return found
        step = max(1, _IN_CHUNK - len(names))
        with self._db.read() as conn:
            for start in range(0, len(ids), step):
                rank = (
                    sa.func.row_number()
                    .over(
                        partition_by=(t.c.journey, t.c.user_id),
                        order_by=(t.c.entered_at.desc(), t.c.run_id.desc()),
                    )
                    .label("rn")
                )
                ranked = (
                    sa.select(t, rank)
                    .where(
                        t.c.tenant == tenant,
                        t.c.journey.in_(names),
                        t.c.user_id.in_(ids[start : start + step]),
                    )
                    .subquery()
                )
                rows = conn.execute(sa.select(ranked).where(ranked.c.rn == 1))
                for row in rows:
                    found[(row.journey, row.user_id)] = _run_row(row)
        return found

    def due(self, tenant: str, now: datetime, *, limit: int = 1000) -> list[JourneyRun]:
        t = msg_journey_runs
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(t)
                .where(
                    t.c.tenant == tenant,
                    t.c.status == RunStatus.ACTIVE.value,
                    t.c.wake_at <= now,
                )
                .order_by(t.c.wake_at, t.c.run_id)
                .limit(limit)
            ).all()
        return [_run_row(r) for r in rows]


class SqlItemChangeStore(_SqlStore):
    """The item-change queue in the database: leased claims, so several processes can drain it."""

    def record(self, changes: Sequence[ItemChange]) -> None:
        if not changes:
            return
        with self._db.write() as conn:
            conn.execute(
                msg_item_changes.insert(),
                [
                    {
                        "tenant": c.tenant,
                        "item_id": c.item_id,
                        "kind": c.kind,
                        "at": c.at,
                        "data": orjson.dumps(c.to_record()).decode(),
                        "lease_until": None,
                    }
                    for c in changes
                ],
            )

    def claim(self, now: datetime, *, limit: int, lease: timedelta) -> list[tuple[int, ItemChange]]:
        t = msg_item_changes
        free = sa.or_(t.c.lease_until.is_(None), t.c.lease_until <= now)
        with self._db.read() as conn:
            if conn.execute(sa.select(t.c.change_id).where(free).limit(1)).first() is None:
                return []  # the usual case: no write transaction every round for nothing
        with self._db.write() as conn:
            rows = conn.execute(
                sa.select(t.c.change_id, t.c.tenant, t.c.item_id, t.c.kind, t.c.at, t.c.data)
                .where(free)
                .order_by(t.c.change_id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if rows:
                conn.execute(
                    t.update()
                    .where(t.c.change_id.in_([row.change_id for row in rows]))
                    .values(lease_until=now + lease)
                )
        claimed = []
        for row in rows:
            extra = orjson.loads(row.data)
            kind: ChangeKind = row.kind
            claimed.append(
                (
                    int(row.change_id),
                    ItemChange(
                        tenant=row.tenant,
                        item_id=row.item_id,
                        kind=kind,
                        at=row.at,
                        title=extra.get("title") or "",
                        old_price=extra.get("old_price"),
                        new_price=extra.get("new_price"),
                        currency=extra.get("currency"),
                    ),
                )
            )
        return claimed

    def done(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        with self._db.write() as conn:
            conn.execute(
                msg_item_changes.delete().where(msg_item_changes.c.change_id.in_(list(ids)))
            )

    def prune(self, before: datetime) -> int:
        with self._db.write() as conn:
            result = conn.execute(msg_item_changes.delete().where(msg_item_changes.c.at < before))
            return int(result.rowcount or 0)


class SqlItemViewStore(_SqlStore):
    """Latest view time per (tenant, item, person), in the database."""

    def record_views(self, tenant: str, views: Sequence[tuple[str, str, datetime]]) -> None:
        if not views:
            return
        latest: dict[tuple[str, str], datetime] = {}
        for item_id, user_id, at in views:
            key = (item_id, user_id)
            if key not in latest or at > latest[key]:
                latest[key] = at
        statement = upsert_insert(self._db.dialect, msg_item_views)
        newest = sa.func.greatest if self._db.is_postgres else sa.func.max
        statement = statement.on_conflict_do_update(
            index_elements=["tenant", "item_id", "user_id"],
            set_={"viewed_at": newest(msg_item_views.c.viewed_at, statement.excluded.viewed_at)},
        )
        rows = [
            {"tenant": tenant, "item_id": item_id, "user_id": user_id, "viewed_at": at}
            for (item_id, user_id), at in latest.items()
        ]
        with self._db.write() as conn:
            for start in range(0, len(rows), _IN_CHUNK):
                conn.execute(statement, rows[start : start + _IN_CHUNK])

    def viewers(self, tenant: str, item_id: str, since: datetime, *, limit: int) -> list[str]:
        t = msg_item_views
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(t.c.user_id)
                .where(t.c.tenant == tenant, t.c.item_id == item_id, t.c.viewed_at >= since)
                .order_by(t.c.viewed_at.desc(), t.c.user_id)
                .limit(limit)
            )
            return [str(row[0]) for row in rows]

    def prune(self, before: datetime) -> int:
        with self._db.write() as conn:
            result = conn.execute(
                msg_item_views.delete().where(msg_item_views.c.viewed_at < before)
            )
            return int(result.rowcount or 0)

    def delete_user(self, tenant: str, user_id: str) -> int:
        t = msg_item_views
        with self._db.write() as conn:
            result = conn.execute(t.delete().where(t.c.tenant == tenant, t.c.user_id == user_id))
            return int(result.rowcount or 0)

    def backfilled(self, tenant: str) -> bool:
        t = msg_item_view_backfills
        with self._db.read() as conn:
            return (
                conn.execute(sa.select(t.c.tenant).where(t.c.tenant == tenant)).first() is not None
            )

    def mark_backfilled(self, tenant: str, at: datetime) -> None:
        statement = upsert_insert(self._db.dialect, msg_item_view_backfills).values(
            tenant=tenant, at=at
        )
        with self._db.write() as conn:
            conn.execute(
                statement.on_conflict_do_update(index_elements=["tenant"], set_={"at": at})
            )
