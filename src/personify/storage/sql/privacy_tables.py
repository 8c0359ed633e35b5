"""SQL tables of the privacy capability (preferences, audit log), on the shared metadata.

Migration ``0003_privacy`` creates exactly these tables (the migration contract compares
them); change both together. Every row is keyed by tenant.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from personify.domain import limits
from personify.storage.sql._columns import UtcDateTime
from personify.storage.sql.schema import ID, NAME, SERIAL, TENANT, metadata

preferences = Table(
    "personify_preferences",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("user_id", ID, primary_key=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("body", Text, nullable=False, comment="declared interests and mutes as JSON"),
)

audit_log = Table(
    "personify_audit_log",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("tenant", TENANT, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("key_id", String(limits.MAX_SHORT_TEXT), nullable=False),
    Column("action", NAME, nullable=False),
    Column("resource", String(limits.MAX_SHORT_TEXT), nullable=False),
    Column("subject", String(64), comment="pseudonym of the person, never the id"),
    Column("status", Integer, nullable=False),
)
Index("ix_personify_audit_log_tenant_at", audit_log.c.tenant, audit_log.c.at)
Index("ix_personify_audit_log_tenant_subject", audit_log.c.tenant, audit_log.c.subject)
