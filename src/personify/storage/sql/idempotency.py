"""SQL idempotency keys: the first answer to each ``Idempotency-Key`` per tenant and API key.

A request claims its key (a row without a status) before it runs, and the row gets the answer
once it has one; a retry with the same key and the same request finds the answer, a retry
with a different request is refused, and a retry while the first is still running waits its
turn (409). Rows live in the database so every process behind a load balancer shares them;
they expire ``ttl`` after the first request and are purged as new keys arrive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from personify.storage.sql._columns import to_utc
from personify.storage.sql._dialect import upsert_insert
from personify.storage.sql.database import Database
from personify.storage.sql.schema import idempotency_keys

_I = idempotency_keys.c
ABANDONED_AFTER = timedelta(minutes=5)
"""A claim without an answer this old belongs to a request that died (its process stopped):
the key may be claimed again."""
PURGE_EVERY = timedelta(minutes=1)
"""Expired rows are deleted at most this often per process (on the next claim)."""


class Verdict(Enum):
    CLAIMED = "claimed"
    """Nobody used the key (or its row expired): run the request, then ``complete`` or
    ``release``."""
    REPLAY = "replay"
    """The same request already has an answer: send it again."""
    MISMATCH = "mismatch"
    """The key was used for a different request."""
    IN_PROGRESS = "in_progress"
    """The first request with this key has not answered yet."""


@dataclass(frozen=True)
class Claim:
    verdict: Verdict
    status: int | None = None
    content_type: str | None = None
    body: bytes | None = None


@dataclass(frozen=True)
class Scope:
    """Whose key: the tenant and the API key id of the request."""

    tenant: str
    key_id: str
    idempotency_key: str

    def where(self) -> sa.ColumnElement[bool]:
        return sa.and_(_I.tenant == self.tenant, _I.key_id == self.key_id,
                       _I.idempotency_key == self.idempotency_key)


class SqlIdempotencyStore:
    """The idempotency keys on SQLite or PostgreSQL (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._last_purge: datetime | None = None

    def claim(self, scope: Scope, request_hash: str, *, now: datetime,
              ttl: timedelta) -> Claim:
        """Claim ``scope``'s key for the request hashed ``request_hash`` (see :class:`Verdict`)."""
        now = to_utc(now)
        self._maybe_purge(now)
        row = {"tenant": scope.tenant, "key_id": scope.key_id,
               "idempotency_key": scope.idempotency_key, "request_hash": request_hash,
               "status": None, "content_type": None, "body": None,
               "created_at": now, "expires_at": now + ttl}
        insert = upsert_insert(self._db.dialect, idempotency_keys).values(**row)
        with self._db.write() as conn:
            inserted = conn.execute(insert.on_conflict_do_nothing().returning(_I.tenant))
            if inserted.first() is not None:
                return Claim(Verdict.CLAIMED)
            found = conn.execute(
                sa.select(_I.request_hash, _I.status, _I.content_type, _I.body,
                          _I.created_at, _I.expires_at).where(scope.where())
            ).one_or_none()
            if found is None:  # deleted between the insert and the read: claim it now
                conn.execute(idempotency_keys.insert().values(**row))
                return Claim(Verdict.CLAIMED)
            expired = to_utc(found.expires_at) <= now
            abandoned = found.status is None and to_utc(found.created_at) <= now - ABANDONED_AFTER
            if expired or abandoned:
                self._reclaim(conn, scope, found.created_at, row)
                return Claim(Verdict.CLAIMED)
            if found.request_hash != request_hash:
                return Claim(Verdict.MISMATCH)
            if found.status is None:
                return Claim(Verdict.IN_PROGRESS)
            return Claim(Verdict.REPLAY, int(found.status), found.content_type,
                         bytes(found.body or b""))

    def _reclaim(self, conn: Connection, scope: Scope, created_at: datetime,
                 row: Mapping[str, object]) -> None:
        values = {k: v for k, v in row.items() if k not in ("tenant", "key_id", "idempotency_key")}
        conn.execute(idempotency_keys.update()
                     .where(scope.where(), _I.created_at == created_at).values(**values))

    def complete(self, scope: Scope, *, status: int, content_type: str | None,
                 body: bytes) -> None:
        """Keep the answer of the claimed request."""
        with self._db.write() as conn:
            conn.execute(idempotency_keys.update()
                         .where(scope.where(), _I.status.is_(None))
                         .values(status=status, content_type=content_type, body=body))

    def release(self, scope: Scope) -> None:
        """Give the key back (the request failed in a way a retry should redo)."""
        with self._db.write() as conn:
            conn.execute(idempotency_keys.delete().where(scope.where(), _I.status.is_(None)))

    def purge(self, now: datetime) -> int:
        """Delete the expired rows; how many."""
        with self._db.write() as conn:
            result = conn.execute(
                idempotency_keys.delete().where(_I.expires_at <= to_utc(now)))
        return int(result.rowcount or 0)

    def _maybe_purge(self, now: datetime) -> None:
        if self._last_purge is None or now - self._last_purge >= PURGE_EVERY:
            self._last_purge = now
            self.purge(now)
