"""Initial schema: events, users, anonymous ids, items, consents, API keys, erasures, meta.

Revision ID: 0001
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from personify.storage.sql._columns import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT = sa.String(64)
ID = sa.String(128)
NAME = sa.String(64)
SHORT = sa.String(512)
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PERSON_EVENT_COLUMNS = ("user_id", "anonymous_id")
"""Indexed (partially, when set) with the timestamp: a person's events are read newest first.
Item, recommendation, order and receive time are never looked up, so not indexed (each index
costs 3-7 us per appended event on SQLite)."""


def upgrade() -> None:
    op.create_table(
        "personify_events",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("event_id", ID, nullable=False),
        sa.Column("type", NAME, nullable=False),
        sa.Column("user_id", ID),
        sa.Column("anonymous_id", ID),
        sa.Column("item_id", ID),
        sa.Column("timestamp", UtcDateTime(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("recommendation_id", ID),
        sa.Column("order_id", ID),
        sa.Column("payload", sa.Text, nullable=False, comment="the whole event as JSON"),
        sa.PrimaryKeyConstraint("id", name="pk_personify_events"),
        sa.UniqueConstraint("tenant", "event_id", name="uq_personify_events_tenant_event_id"),
    )
    op.create_index(
        "ix_personify_events_tenant_ts", "personify_events", ["tenant", "timestamp", "id"]
    )
    op.create_index(
        "ix_personify_events_tenant_type_ts", "personify_events", ["tenant", "type", "timestamp"]
    )
    for name in PERSON_EVENT_COLUMNS:
        where = sa.text(f"{name} IS NOT NULL")
        op.create_index(
            f"ix_personify_events_tenant_{name}",
            "personify_events",
            ["tenant", name, "timestamp"],
            sqlite_where=where,
            postgresql_where=where,
        )

    op.create_table(
        "personify_users",
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("name", SHORT),
        sa.Column("email", SHORT, comment="case-folded"),
        sa.Column("country", SHORT),
        sa.Column("search_text", sa.Text, nullable=False, comment="case-folded id, name and email"),
        sa.Column("restricted", sa.Boolean, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("payload", sa.Text, nullable=False, comment="profile, properties as JSON"),
        sa.PrimaryKeyConstraint("tenant", "user_id", name="pk_personify_users"),
    )
    op.create_index("ix_personify_users_tenant_email", "personify_users", ["tenant", "email"])
    op.create_index("ix_personify_users_tenant_country", "personify_users", ["tenant", "country"])

    op.create_table(
        "personify_user_anonymous_ids",
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("anonymous_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "anonymous_id", name="pk_personify_user_anonymous_ids"),
        sa.ForeignKeyConstraint(
            ["tenant", "user_id"],
            ["personify_users.tenant", "personify_users.user_id"],
            name="fk_personify_user_anonymous_ids_tenant_personify_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_personify_user_anonymous_ids_tenant_user",
        "personify_user_anonymous_ids",
        ["tenant", "user_id"],
    )

    op.create_table(
        "personify_items",
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("item_id", ID, nullable=False),
        sa.Column("type", NAME, nullable=False),
        sa.Column("title", SHORT, nullable=False),
        sa.Column("search_text", sa.Text, nullable=False, comment="case-folded id and title"),
        sa.Column("available", sa.Boolean, nullable=False),
        sa.Column("hidden", sa.Boolean, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime()),
        sa.Column("payload", sa.Text, nullable=False, comment="the whole item as JSON"),
        sa.PrimaryKeyConstraint("tenant", "item_id", name="pk_personify_items"),
    )
    op.create_index("ix_personify_items_tenant_type", "personify_items", ["tenant", "type"])

    op.create_table(
        "personify_consents",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("purpose", NAME, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("source", SHORT, nullable=False),
        sa.Column("text_version", SHORT),
        sa.Column("expires_at", UtcDateTime()),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_personify_consents"),
    )
    op.create_index(
        "ix_personify_consents_tenant_user",
        "personify_consents",
        ["tenant", "user_id", "purpose", "recorded_at"],
    )

    op.create_table(
        "personify_api_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("name", SHORT, nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False, comment="comma-separated"),
        sa.Column(
            "secret_hash", sa.String(64), nullable=False, comment="hex SHA-256 of the secret"
        ),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime()),
        sa.PrimaryKeyConstraint("key_id", name="pk_personify_api_keys"),
    )
    op.create_index("ix_personify_api_keys_tenant", "personify_api_keys", ["tenant"])

    op.create_table(
        "personify_erasures",
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("user_id_hash", sa.String(64), nullable=False, comment="keyed SHA-256, hex"),
        sa.Column("erased_at", UtcDateTime(), nullable=False),
        sa.Column("receipt_id", ID, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "user_id_hash", name="pk_personify_erasures"),
    )

    op.create_table(
        "personify_meta",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_personify_meta"),
    )


def downgrade() -> None:
    for table in (
        "personify_meta",
        "personify_erasures",
        "personify_api_keys",
        "personify_consents",
        "personify_items",
        "personify_user_anonymous_ids",
        "personify_users",
        "personify_events",
    ):
        op.drop_table(table)
