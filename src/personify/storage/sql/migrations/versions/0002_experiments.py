"""Experiments: definitions, first exposures, sticky-assignment aliases, bandit decisions and
decision points (see ``personify.storage.sql.experiment_tables``).

Revision ID: 0002_experiments
Revises: 0001
Create Date: 2024-07-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from personify.storage.sql._columns import UtcDateTime

revision = "0002_experiments"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT = sa.String(64)
ID = sa.String(128)
NAME = sa.String(64)
UNIT = sa.String(256)
STATUS = sa.String(16)


def upgrade() -> None:
    op.create_table(
        "personify_experiments",
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("layer", NAME, nullable=False),
        sa.Column("status", STATUS, nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column(
            "definition", sa.Text, nullable=False, comment="the whole experiment as JSON"
        ),
        sa.PrimaryKeyConstraint("tenant", "name", name="pk_personify_experiments"),
    )
    op.create_index(
        "ix_personify_experiments_tenant_layer_status",
        "personify_experiments",
        ["tenant", "layer", "status"],
    )

    op.create_table(
        "personify_experiment_exposures",
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("experiment", NAME, nullable=False),
        sa.Column("unit", UNIT, nullable=False),
        sa.Column("variant", NAME, nullable=False),
        sa.Column("timestamp", UtcDateTime(), nullable=False),
        sa.Column("recommendation_id", ID),
        sa.PrimaryKeyConstraint(
            "tenant", "experiment", "unit", name="pk_personify_experiment_exposures"
        ),
    )

    op.create_table(
        "personify_experiment_aliases",
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column(
            "unit", UNIT, nullable=False, comment="the first unit key seen for the user"
        ),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "user_id", name="pk_personify_experiment_aliases"),
    )

    op.create_table(
        "personify_bandit_decisions",
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("decision_id", ID, nullable=False),
        sa.Column("policy", NAME, nullable=False),
        sa.Column("timestamp", UtcDateTime(), nullable=False),
        sa.Column(
            "body",
            sa.Text,
            nullable=False,
            comment="context, actions, chosen, propensities (JSON)",
        ),
        sa.PrimaryKeyConstraint("tenant", "decision_id", name="pk_personify_bandit_decisions"),
    )
    op.create_index(
        "ix_personify_bandit_decisions_tenant_policy_ts",
        "personify_bandit_decisions",
        ["tenant", "policy", "timestamp"],
    )

    op.create_table(
        "personify_decision_points",
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("point", NAME, nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column(
            "config", sa.Text, nullable=False, comment="policy kind and hyper-parameters (JSON)"
        ),
        sa.Column(
            "state", sa.Text, comment="the learned policy state (JSON), saved after updates"
        ),
        sa.PrimaryKeyConstraint("tenant", "point", name="pk_personify_decision_points"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_personify_bandit_decisions_tenant_policy_ts", table_name="personify_bandit_decisions"
    )
    op.drop_index(
        "ix_personify_experiments_tenant_layer_status", table_name="personify_experiments"
    )
    for table in (
        "personify_decision_points",
        "personify_bandit_decisions",
        "personify_experiment_aliases",
        "personify_experiment_exposures",
        "personify_experiments",
    ):
        op.drop_table(table)
