"""SQL adapter of the messaging definitions: templates, journeys and campaigns per tenant.

Storage sits below ``personify.messaging`` in the layering, so this adapter keeps plain JSON
documents keyed by (tenant, kind, name) plus an ``enabled`` flag; the API edge validates them
into ``MessageTemplate`` / ``JourneyDefinition`` / ``Campaign``. Works on SQLite, ``memory://``
and PostgreSQL alike::

    definitions = open_definitions(url)  # personify.storage.registry; or (db) to share one
    definitions.put("default", "journey", "welcome", {...}, enabled=True)
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from personify.storage.sql._dialect import upsert_insert
from personify.storage.sql.database import Database
from personify.storage.sql.messaging_tables import messaging_definitions as _table


@dataclass(frozen=True)
class StoredDefinition:
    """One stored definition document."""

    tenant: str
    kind: str
    name: str
    body: dict[str, Any]
    enabled: bool
    updated_at: datetime


def _row(row: Any) -> StoredDefinition:
    return StoredDefinition(
        tenant=row.tenant,
        kind=row.kind,
        name=row.name,
        body=orjson.loads(row.body),
        enabled=bool(row.enabled),
        updated_at=row.updated_at,
    )


class SqlMessagingDefinitions:
    """Create / replace, read, list, enable and delete definition documents."""

    def __init__(
        self, db: Database, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        owns_database: bool = False,
    ) -> None:
        self.db = db
        self.clock = clock
        self._owns = owns_database

    def close(self) -> None:
        """Dispose the database when this store opened it (``open_definitions`` by URL)."""
        if self._owns:
            self.db.dispose()

    def put(
        self, tenant: str, kind: str, name: str, body: Mapping[str, Any], *, enabled: bool
    ) -> StoredDefinition:
        """Store ``body`` under (tenant, kind, name), replacing any earlier version."""
        now = self.clock()
        values = {
            "tenant": tenant,
            "kind": kind,
            "name": name,
            "enabled": enabled,
            "updated_at": now,
            "body": orjson.dumps(dict(body), option=orjson.OPT_NON_STR_KEYS).decode(),
        }
        insert = upsert_insert(self.db.dialect, _table).values(**values)
        statement = insert.on_conflict_do_update(
            index_elements=[_table.c.tenant, _table.c.kind, _table.c.name],
            set_={"enabled": enabled, "updated_at": now, "body": values["body"]},
        )
        with self.db.write() as conn:
            conn.execute(statement)
        return StoredDefinition(tenant, kind, name, dict(body), enabled, now)

    def get(self, tenant: str, kind: str, name: str) -> StoredDefinition | None:
        query = sa.select(_table).where(
            _table.c.tenant == tenant, _table.c.kind == kind, _table.c.name == name
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
        return _row(row) if row is not None else None

    def list(self, tenant: str, kind: str, *, enabled_only: bool = False) -> list[StoredDefinition]:
        """The tenant's definitions of one kind, by name."""
        query = sa.select(_table).where(_table.c.tenant == tenant, _table.c.kind == kind)
        if enabled_only:
            query = query.where(_table.c.enabled.is_(True))
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(_table.c.name)).all()
        return [_row(r) for r in rows]

    def set_enabled(self, tenant: str, kind: str, name: str, enabled: bool) -> bool:
        """Switch a definition on or off; False when it does not exist."""
        statement = (
            sa.update(_table)
            .where(_table.c.tenant == tenant, _table.c.kind == kind, _table.c.name == name)
            .values(enabled=enabled, updated_at=self.clock())
        )
        with self.db.write() as conn:
            return bool(conn.execute(statement).rowcount)

    def delete(self, tenant: str, kind: str, name: str) -> bool:
        statement = sa.delete(_table).where(
            _table.c.tenant == tenant, _table.c.kind == kind, _table.c.name == name
        )
        with self.db.write() as conn:
            return bool(conn.execute(statement).rowcount)

    def tenants(self, kind: str, *, enabled_only: bool = True) -> builtins.list[str]:
        """Every tenant holding a definition of ``kind`` (enabled ones only by default)."""
        query = sa.select(_table.c.tenant).where(_table.c.kind == kind).distinct()
        if enabled_only:
            query = query.where(_table.c.enabled.is_(True))
        with self.db.read() as conn:
            return sorted(str(t) for t in conn.execute(query).scalars())
