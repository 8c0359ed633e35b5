"""Installation-wide named values in ``personify_meta`` (the legal basis of the data, ...)."""

from __future__ import annotations

import sqlalchemy as sa

from personify.storage.sql._dialect import upsert_insert
from personify.storage.sql.database import Database
from personify.storage.sql.schema import meta


class SqlMeta:
    """Read and write one ``personify_meta`` row by name."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, name: str) -> str | None:
        with self._db.read() as conn:
            value = conn.execute(sa.select(meta.c.value).where(meta.c.name == name)).scalar()
        return None if value is None else str(value)

    def set(self, name: str, value: str) -> None:
        with self._db.write() as conn:
            conn.execute(
                upsert_insert(self._db.dialect, meta)
                .values(name=name, value=value)
                .on_conflict_do_update(index_elements=["name"], set_={"value": value})
            )
