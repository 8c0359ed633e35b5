"""The first answer to each ``Idempotency-Key`` (per tenant and API key), shared by every
process so that a retried write is answered from here instead of being done twice.

Revision ID: 0007_idempotency_keys
Revises: 0006_messaging_state
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from personify.storage.sql._columns import UtcDateTime

revision = "0007_idempotency_keys"
down_revision = "0006_messaging_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "personify_idempotency_keys",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column(
            "key_id", sa.String(32), nullable=False, comment="the API key that sent the request"
        ),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column(
            "request_hash",
            sa.String(64),
            nullable=False,
            comment="SHA-256 of method, path, query and body",
        ),
        sa.Column(
            "status", sa.Integer, comment="the stored answer's status; NULL while in progress"
        ),
        sa.Column("content_type", sa.String(200)),
        sa.Column("body", sa.LargeBinary),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant", "key_id", "idempotency_key", name="pk_personify_idempotency_keys"
        ),
    )
    op.create_index(
        "ix_personify_idempotency_keys_expires_at", "personify_idempotency_keys", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index(
        "ix_personify_idempotency_keys_expires_at", table_name="personify_idempotency_keys"
    )
    op.drop_table("personify_idempotency_keys")
