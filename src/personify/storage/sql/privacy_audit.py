"""SQL audit log of personal-data access (append-only; purged by age only)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from personify.domain.privacy import AuditEntry
from personify.storage.sql._columns import to_utc
from personify.storage.sql.database import Database
from personify.storage.sql.privacy_tables import audit_log

_A = audit_log.c


class SqlAuditLog:
    """The ``personify.privacy.audit.AuditLog`` on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, entry: AuditEntry) -> AuditEntry:
        statement = (
            sa.insert(audit_log)
            .values(
                tenant=entry.tenant, at=to_utc(entry.at), key_id=entry.key_id,
                action=entry.action, resource=entry.resource, subject=entry.subject,
                status=entry.status,
            )
            .returning(_A.id)
        )
        with self._db.write() as conn:
            entry_id = int(conn.execute(statement).scalar_one())
        return entry.model_copy(update={"entry_id": entry_id})

    def list(
        self,
        tenant: str,
        *,
        subject: str | None = None,
        key_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        query = sa.select(audit_log).where(_A.tenant == tenant)
        if subject is not None:
            query = query.where(_A.subject == subject)
        if key_id is not None:
            query = query.where(_A.key_id == key_id)
        if since is not None:
            query = query.where(_A.at >= to_utc(since))
        query = query.order_by(_A.at.desc(), _A.id.desc()).limit(limit)
        with self._db.read() as conn:
            return [
                AuditEntry(
                    tenant=row.tenant, key_id=row.key_id, action=row.action,
                    resource=row.resource, subject=row.subject, status=row.status, at=row.at,
                    entry_id=row.id,
                )
                for row in conn.execute(query)
            ]

    def delete_older_than(self, tenant: str, cutoff: datetime) -> int:
        statement = sa.delete(audit_log).where(_A.tenant == tenant, _A.at < to_utc(cutoff))
        with self._db.write() as conn:
            return int(getattr(conn.execute(statement), "rowcount", 0) or 0)
