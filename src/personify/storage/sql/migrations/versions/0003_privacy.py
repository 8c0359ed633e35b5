"""Privacy: user preferences (declared interests, mutes) and the personal-data audit log (see
``personify.storage.sql.privacy_tables``).

Revision ID: 0003_privacy
Revises: 0004_messaging
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from personify.storage.sql._columns import UtcDateTime

revision = "0003_privacy"
down_revision = "0004_messaging"
branch_labels = None
depends_on = None

TENANT = sa.String(64)
ID = sa.String(128)
NAME = sa.String(64)
SHORT = sa.String(512)
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "personify_preferences",
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column(
            "body", sa.Text, nullable=False, comment="declared interests and mutes as JSON"
        ),
        sa.PrimaryKeyConstraint("tenant", "user_id", name="pk_personify_preferences"),
    )
    op.create_table(
        "personify_audit_log",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("key_id", SHORT, nullable=False),
        sa.Column("action", NAME, nullable=False),
        sa.Column("resource", SHORT, nullable=False),
        sa.Column("subject", sa.String(64), comment="pseudonym of the person, never the id"),
        sa.Column("status", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_personify_audit_log"),
    )
    op.create_index(
        "ix_personify_audit_log_tenant_at", "personify_audit_log", ["tenant", "at"]
    )
    op.create_index(
        "ix_personify_audit_log_tenant_subject", "personify_audit_log", ["tenant", "subject"]
    )


def downgrade() -> None:
    op.drop_index("ix_personify_audit_log_tenant_subject", table_name="personify_audit_log")
    op.drop_index("ix_personify_audit_log_tenant_at", table_name="personify_audit_log")
    op.drop_table("personify_audit_log")
    op.drop_table("personify_preferences")
