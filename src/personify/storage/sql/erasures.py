"""SQL erasure tombstones: a keyed hash of each erased user id, never the id itself."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from personify.storage.ports import Tombstone
from personify.storage.sql._columns import to_utc
from personify.storage.sql._dialect import upsert_insert
from personify.storage.sql.database import Database
from personify.storage.sql.schema import erasures, meta

_E = erasures.c
HASH_KEY_NAME = "erasure_hash_key"
"""The ``personify_meta`` row holding the HMAC key when none is configured."""


class SqlErasureStore:
    """The :class:`~personify.storage.ports.ErasureStore` on SQLite or PostgreSQL.

    The hash is HMAC-SHA256 over ``tenant`` and ``user_id``. Its key is ``hash_key`` when given
    (e.g. from the operator's pseudonym secret); otherwise a random key generated once per
    database and kept in ``personify_meta``. The key must never change, or tombstones stop
    matching.
    """

    def __init__(self, db: Database, *, hash_key: bytes | None = None) -> None:
        self._db = db
        self._key = hash_key

    def user_id_hash(self, tenant: str, user_id: str) -> str:
        message = f"{tenant}\x00{user_id}".encode()
        return hmac.new(self._hash_key(), message, hashlib.sha256).hexdigest()

    def record(
        self, tenant: str, user_id_hash: str, erased_at: datetime, receipt_id: str
    ) -> Tombstone:
        """Store (or refresh) the tombstone of one erasure."""
        erased_at = to_utc(erased_at)
        insert = upsert_insert(self._db.dialect, erasures)
        statement = insert.values(
            tenant=tenant, user_id_hash=user_id_hash, erased_at=erased_at, receipt_id=receipt_id
        ).on_conflict_do_update(
            index_elements=["tenant", "user_id_hash"],
            set_={"erased_at": insert.excluded.erased_at, "receipt_id": insert.excluded.receipt_id},
        )
        with self._db.write() as conn:
            conn.execute(statement)
        return Tombstone(user_id_hash=user_id_hash, erased_at=erased_at, receipt_id=receipt_id)

    def is_erased(self, tenant: str, user_id: str) -> bool:
        return self.find(tenant, user_id) is not None

    def erased_among(self, tenant: str, user_ids: Iterable[str]) -> set[str]:
        """The ids among ``user_ids`` that were erased: one query per 500 distinct ids, and a
        single cheap query when the tenant has no tombstone at all (the common case)."""
        found: set[str] = set()
        none_yet = sa.select(_E.user_id_hash).where(_E.tenant == tenant).limit(1)
        with self._db.read() as conn:
            if conn.execute(none_yet).first() is None:
                return found
        by_hash = {self.user_id_hash(tenant, user_id): user_id for user_id in set(user_ids)}
        hashes = list(by_hash)
        with self._db.read() as conn:
            for start in range(0, len(hashes), 500):
                query = sa.select(_E.user_id_hash).where(
                    _E.tenant == tenant, _E.user_id_hash.in_(hashes[start : start + 500])
                )
                found.update(by_hash[digest] for digest in conn.execute(query).scalars())
        return found

    def find(self, tenant: str, user_id: str) -> Tombstone | None:
        digest = self.user_id_hash(tenant, user_id)
        query = sa.select(_E.erased_at, _E.receipt_id).where(
            _E.tenant == tenant, _E.user_id_hash == digest
        )
        with self._db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return Tombstone(user_id_hash=digest, erased_at=row.erased_at, receipt_id=row.receipt_id)

    def erased_since(self, tenant: str, since: datetime) -> list[Tombstone]:
        query = (
            sa.select(_E.user_id_hash, _E.erased_at, _E.receipt_id)
            .where(_E.tenant == tenant, _E.erased_at >= to_utc(since))
            .order_by(_E.erased_at, _E.user_id_hash)
        )
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        return [Tombstone(r.user_id_hash, to_utc(r.erased_at), r.receipt_id) for r in rows]

    def _hash_key(self) -> bytes:
        if self._key is None:
            with self._db.write() as conn:
                self._key = bytes.fromhex(_stored_key(conn, self._db.dialect))
        return self._key


def _stored_key(conn: Connection, dialect: str) -> str:
    """The database's tombstone key, created on first use (the first writer wins)."""
    conn.execute(
        upsert_insert(dialect, meta)
        .values(name=HASH_KEY_NAME, value=secrets.token_hex(32))
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return str(
        conn.execute(sa.select(meta.c.value).where(meta.c.name == HASH_KEY_NAME)).scalar_one()
    )
