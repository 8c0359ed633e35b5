"""SQL consent log: append-only; the current state is derived, never stored."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from personify.domain.consents import ConsentRecord, current_consents
from personify.storage.sql._columns import to_utc
from personify.storage.sql.database import Database
from personify.storage.sql.schema import consents

_C = consents.c
_CHUNK = 500
"""Ids per ``IN (...)`` list in bulk reads."""


class SqlConsentStore:
    """The :class:`~personify.storage.ports.ConsentStore` on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def append(self, tenant: str, record: ConsentRecord) -> ConsentRecord:
        """Store one change; ``recorded_at`` defaults to now and ``record_id`` is assigned."""
        recorded_at = to_utc(record.recorded_at) if record.recorded_at else datetime.now(UTC)
        expires_at = to_utc(record.expires_at) if record.expires_at else None
        statement = (
            sa.insert(consents)
            .values(
                tenant=tenant,
                user_id=record.user_id,
                purpose=record.purpose,
                state=record.state.value,
                source=record.source,
                text_version=record.text_version,
                expires_at=expires_at,
                recorded_at=recorded_at,
            )
            .returning(_C.id)
        )
        with self._db.write() as conn:
            record_id = int(conn.execute(statement).scalar_one())
        return record.model_copy(
            update={"record_id": record_id, "recorded_at": recorded_at, "expires_at": expires_at}
        )

    def history(self, tenant: str, user_id: str) -> list[ConsentRecord]:
        """Every record of the user, oldest first."""
        query = (
            sa.select(consents)
            .where(_C.tenant == tenant, _C.user_id == user_id)
            .order_by(_C.recorded_at, _C.id)
        )
        with self._db.read() as conn:
            return [_record(row) for row in conn.execute(query)]

    def current(
        self, tenant: str, user_id: str, *, now: datetime | None = None
    ) -> dict[str, ConsentRecord]:
        """Per purpose, the latest record made by ``now`` — dropped if it has expired by then.

        An expired latest record never falls back to an older one: an expired grant means no
        consent, whatever was granted before.
        """
        moment = to_utc(now) if now else datetime.now(UTC)
        return current_consents(self.history(tenant, user_id), moment)

    def current_many(
        self, tenant: str, user_ids: Sequence[str], *, now: datetime | None = None
    ) -> dict[str, dict[str, ConsentRecord]]:
        """:meth:`current` for many users in a few queries; users with no record are absent."""
        moment = to_utc(now) if now else datetime.now(UTC)
        ids = list(dict.fromkeys(user_ids))
        histories: dict[str, list[ConsentRecord]] = {}
        with self._db.read() as conn:
            for start in range(0, len(ids), _CHUNK):
                query = (
                    sa.select(consents)
                    .where(_C.tenant == tenant, _C.user_id.in_(ids[start : start + _CHUNK]))
                    .order_by(_C.recorded_at, _C.id)
                )
                for row in conn.execute(query):
                    histories.setdefault(row.user_id, []).append(_record(row))
        return {u: current_consents(records, moment) for u, records in histories.items()}

    def delete_user(self, tenant: str, user_id: str) -> int:
        statement = sa.delete(consents).where(_C.tenant == tenant, _C.user_id == user_id)
        with self._db.write() as conn:
            return int(getattr(conn.execute(statement), "rowcount", 0) or 0)


def _record(row: Any) -> ConsentRecord:
    return ConsentRecord(
        user_id=row.user_id,
        purpose=row.purpose,
        state=row.state,
        source=row.source,
        text_version=row.text_version,
        expires_at=row.expires_at,
        recorded_at=row.recorded_at,
        record_id=row.id,
    )
