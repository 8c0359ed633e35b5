"""SQL table of the messaging definitions (templates, journeys, campaigns), on the shared
metadata of ``schema.py``.

Migration ``0004_messaging`` creates exactly this table (the migration contract compares them);
change both together. The outbox, journey runs, unsubscribes and the inbox live in the messaging
library's own SQLite file (``personify.messaging.sqlite_stores``), not here.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, String, Table, Text

from personify.storage.sql._columns import UtcDateTime
from personify.storage.sql.schema import NAME, TENANT, metadata

KIND = String(16)
"""``template``, ``journey`` or ``campaign``."""

messaging_definitions = Table(
    "personify_messaging_definitions",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("kind", KIND, primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("body", Text, nullable=False, comment="the whole definition as JSON"),
)
Index(
    "ix_personify_messaging_definitions_kind_enabled",
    messaging_definitions.c.kind,
    messaging_definitions.c.enabled,
)
