"""Dialect-specific statement builders (both SQLite and PostgreSQL speak ``ON CONFLICT``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert_insert(dialect: str, table: Table) -> Any:
    """An ``INSERT`` for ``table`` offering ``on_conflict_do_nothing`` / ``_do_update``."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def like_pattern(text: str) -> str:
    """A ``LIKE`` pattern matching ``text`` anywhere, with ``%``, ``_`` and ``\\`` escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
