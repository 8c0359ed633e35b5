"""Messaging definitions: templates, journeys and campaigns as JSON documents per tenant (see
``personify.storage.sql.messaging_tables``).

Revision ID: 0004_messaging
Revises: 0002_experiments
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from personify.storage.sql._columns import UtcDateTime

revision = "0004_messaging"
down_revision = "0002_experiments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "personify_messaging_definitions",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("body", sa.Text, nullable=False, comment="the whole definition as JSON"),
        sa.PrimaryKeyConstraint(
            "tenant", "kind", "name", name="pk_personify_messaging_definitions"
        ),
    )
    op.create_index(
        "ix_personify_messaging_definitions_kind_enabled",
        "personify_messaging_definitions",
        ["kind", "enabled"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_personify_messaging_definitions_kind_enabled",
        table_name="personify_messaging_definitions",
    )
    op.drop_table("personify_messaging_definitions")
