"""SQL store of user preferences: one JSON document per (tenant, user)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import sqlalchemy as sa

from personify.domain.privacy import Preferences
from personify.storage.sql._dialect import upsert_insert
from personify.storage.sql.database import Database
from personify.storage.sql.privacy_tables import preferences

_P = preferences.c


class SqlPreferenceStore:
    """The ``personify.privacy.preferences.PreferenceStore`` on SQLite or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, tenant: str, user_id: str) -> Preferences | None:
        query = sa.select(_P.body).where(_P.tenant == tenant, _P.user_id == user_id)
        with self._db.read() as conn:
            body = conn.execute(query).scalar()
        return None if body is None else Preferences.model_validate_json(body)

    def put(self, tenant: str, user_id: str, prefs: Preferences) -> Preferences:
        stamped = prefs if prefs.updated_at else prefs.model_copy(
            update={"updated_at": datetime.now(UTC)}
        )
        body = orjson.dumps(stamped.model_dump(mode="json")).decode()
        insert = upsert_insert(self._db.dialect, preferences)
        statement = insert.values(
            tenant=tenant, user_id=user_id, updated_at=stamped.updated_at, body=body
        ).on_conflict_do_update(
            index_elements=["tenant", "user_id"],
            set_={"updated_at": insert.excluded.updated_at, "body": insert.excluded.body},
        )
        with self._db.write() as conn:
            conn.execute(statement)
        return stamped

    def delete_user(self, tenant: str, user_id: str) -> bool:
        statement = sa.delete(preferences).where(_P.tenant == tenant, _P.user_id == user_id)
        with self._db.write() as conn:
            return bool(getattr(conn.execute(statement), "rowcount", 0))
