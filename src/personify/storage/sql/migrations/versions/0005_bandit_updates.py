"""Bandit state shared by every process: an append-only log of policy updates (each decision's
action rewarded exactly once) and the decision points' snapshot columns (see
``personify.storage.sql.experiment_tables``).

Revision ID: 0005_bandit_updates
Revises: 0003_privacy
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from personify.storage.sql._columns import UtcDateTime

revision = "0005_bandit_updates"
down_revision = "0003_privacy"
branch_labels = None
depends_on = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("personify_decision_points") as batch:
        batch.add_column(
            sa.Column(
                "epoch",
                sa.String(32),
                comment="changes with every configuration: its update log",
            )
        )
        batch.add_column(
            sa.Column(
                "state_seq", sa.BigInteger, comment="the last update log id the state includes"
            )
        )
    op.create_table(
        "personify_bandit_updates",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("point", sa.String(64), nullable=False),
        sa.Column("epoch", sa.String(32), nullable=False),
        sa.Column("decision_id", sa.String(128), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("reward", sa.Float, nullable=False),
        sa.Column(
            "context", sa.Text, nullable=False, comment="the decision's feature vector (JSON)"
        ),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column(
            "origin", sa.String(32), nullable=False, comment="the process that claimed the update"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_personify_bandit_updates"),
        sa.UniqueConstraint(
            "tenant",
            "point",
            "epoch",
            "decision_id",
            "action",
            name="uq_personify_bandit_updates_claim",
        ),
    )
    op.create_index(
        "ix_personify_bandit_updates_tenant_point_epoch_id",
        "personify_bandit_updates",
        ["tenant", "point", "epoch", "id"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_personify_bandit_updates_tenant_point_epoch_id", table_name="personify_bandit_updates"
    )
    op.drop_table("personify_bandit_updates")
    with op.batch_alter_table("personify_decision_points") as batch:
        batch.drop_column("state_seq")
        batch.drop_column("epoch")
