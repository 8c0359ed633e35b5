"""The SQL tables, as SQLAlchemy Core metadata. Every table is keyed by tenant.

The Alembic migrations in ``migrations/versions`` create exactly this schema (a test compares
them); change both together.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from personify.domain import limits
from personify.storage.sql._columns import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TENANT = String(limits.MAX_NAME_LENGTH)
ID = String(limits.MAX_ID_LENGTH)
NAME = String(limits.MAX_NAME_LENGTH)
SERIAL = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit surrogate key; on SQLite an alias of the rowid (the fastest insert path)."""

events = Table(
    "personify_events",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("tenant", TENANT, nullable=False),
    Column("event_id", ID, nullable=False),
    Column("type", NAME, nullable=False),
    Column("user_id", ID),
    Column("anonymous_id", ID),
    Column("item_id", ID),
    Column("timestamp", UtcDateTime(), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("recommendation_id", ID),
    Column("order_id", ID),
    Column("payload", Text, nullable=False, comment="the whole event as JSON"),
    UniqueConstraint("tenant", "event_id"),
)
Index("ix_personify_events_tenant_ts", events.c.tenant, events.c.timestamp, events.c.id)
Index("ix_personify_events_tenant_type_ts", events.c.tenant, events.c.type, events.c.timestamp)
# Only the columns a query filters on are indexed: each further index costs 3-7 us per
# appended event on SQLite (docs/benchmarks/storage.md); item, recommendation, order and
# receive time are read from scans, never looked up.
for _name in ("user_id", "anonymous_id"):
    _col = events.c[_name]
    Index(
        f"ix_personify_events_tenant_{_name}",
        events.c.tenant,
        _col,
        events.c.timestamp,
        sqlite_where=_col.is_not(None),
        postgresql_where=_col.is_not(None),
    )

users = Table(
    "personify_users",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("user_id", ID, primary_key=True),
    Column("name", String(limits.MAX_SHORT_TEXT)),
    Column("email", String(limits.MAX_SHORT_TEXT), comment="case-folded"),
    Column("country", String(limits.MAX_SHORT_TEXT)),
    Column("search_text", Text, nullable=False, comment="case-folded id, name and email"),
    Column("restricted", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("payload", Text, nullable=False, comment="profile, properties as JSON"),
)
Index("ix_personify_users_tenant_email", users.c.tenant, users.c.email)
Index("ix_personify_users_tenant_country", users.c.tenant, users.c.country)

user_anonymous_ids = Table(
    "personify_user_anonymous_ids",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("anonymous_id", ID, primary_key=True),
    Column("user_id", ID, nullable=False),
    ForeignKeyConstraint(
        ["tenant", "user_id"],
        ["personify_users.tenant", "personify_users.user_id"],
        ondelete="CASCADE",
    ),
)
Index(
    "ix_personify_user_anonymous_ids_tenant_user",
    user_anonymous_ids.c.tenant,
    user_anonymous_ids.c.user_id,
)

items = Table(
    "personify_items",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("item_id", ID, primary_key=True),
    Column("type", NAME, nullable=False),
    Column("title", String(limits.MAX_SHORT_TEXT), nullable=False),
    Column("search_text", Text, nullable=False, comment="case-folded id and title"),
    Column("available", Boolean, nullable=False),
    Column("hidden", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime()),
    Column("payload", Text, nullable=False, comment="the whole item as JSON"),
)
Index("ix_personify_items_tenant_type", items.c.tenant, items.c.type)

consents = Table(
    "personify_consents",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("tenant", TENANT, nullable=False),
    Column("user_id", ID, nullable=False),
    Column("purpose", NAME, nullable=False),
    Column("state", String(16), nullable=False),
    Column("source", String(limits.MAX_SHORT_TEXT), nullable=False),
    Column("text_version", String(limits.MAX_SHORT_TEXT)),
    Column("expires_at", UtcDateTime()),
    Column("recorded_at", UtcDateTime(), nullable=False),
)
Index(
    "ix_personify_consents_tenant_user",
    consents.c.tenant,
    consents.c.user_id,
    consents.c.purpose,
    consents.c.recorded_at,
)

api_keys = Table(
    "personify_api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("tenant", TENANT, nullable=False),
    Column("name", String(limits.MAX_SHORT_TEXT), nullable=False),
    Column("scopes", String(200), nullable=False, comment="comma-separated"),
    Column("secret_hash", String(64), nullable=False, comment="hex SHA-256 of the secret"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime()),
)
Index("ix_personify_api_keys_tenant", api_keys.c.tenant)

erasures = Table(
    "personify_erasures",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("user_id_hash", String(64), primary_key=True, comment="keyed SHA-256, hex"),
    Column("erased_at", UtcDateTime(), nullable=False),
    Column("receipt_id", String(limits.MAX_ID_LENGTH), nullable=False),
)

idempotency_keys = Table(
    "personify_idempotency_keys",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("key_id", String(32), primary_key=True, comment="the API key that sent the request"),
    Column("idempotency_key", String(limits.MAX_IDEMPOTENCY_KEY_LENGTH), primary_key=True),
    Column("request_hash", String(64), nullable=False,
           comment="SHA-256 of method, path, query and body"),
    Column("status", Integer, comment="the stored answer's status; NULL while in progress"),
    Column("content_type", String(200)),
    Column("body", LargeBinary),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
Index("ix_personify_idempotency_keys_expires_at", idempotency_keys.c.expires_at)
"""The first answer to each ``Idempotency-Key`` per tenant and API key (docs/api.md)."""

meta = Table(
    "personify_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
"""Installation-wide values, e.g. the key of the erasure tombstone hash."""

# The experiments' tables live in their own module on this metadata; importing it here keeps
# ``metadata`` complete for create_all and the migration check.
from personify.storage.sql import experiment_tables as _experiment_tables  # noqa: E402, F401
from personify.storage.sql import messaging_tables as _messaging_tables  # noqa: E402, F401
from personify.storage.sql import privacy_tables as _privacy_tables  # noqa: E402, F401
