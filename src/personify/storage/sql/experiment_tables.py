"""SQL tables of experiments and bandit decisions, on the shared metadata of ``schema.py``.

Migration ``0002_experiments`` creates these tables and ``0005_bandit_updates`` adds the shared
bandit update log and the decision points' snapshot columns (the migration contract compares
them); change both together. Every row is keyed by tenant.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, String, Table, Text, UniqueConstraint

from personify.domain import limits
from personify.storage.sql._columns import UtcDateTime
from personify.storage.sql.schema import ID, NAME, SERIAL, TENANT, metadata

UNIT = String(2 * limits.MAX_ID_LENGTH)
"""An assignment unit key: ``anon:<id>`` or ``user:<id>``."""

experiments = Table(
    "personify_experiments",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("layer", NAME, nullable=False),
    Column("status", String(16), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("definition", Text, nullable=False, comment="the whole experiment as JSON"),
)
Index(
    "ix_personify_experiments_tenant_layer_status",
    experiments.c.tenant,
    experiments.c.layer,
    experiments.c.status,
)

experiment_exposures = Table(
    "personify_experiment_exposures",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("experiment", NAME, primary_key=True),
    Column("unit", UNIT, primary_key=True),
    Column("variant", NAME, nullable=False),
    Column("timestamp", UtcDateTime(), nullable=False),
    Column("recommendation_id", ID),
)

experiment_aliases = Table(
    "personify_experiment_aliases",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("user_id", ID, primary_key=True),
    Column("unit", UNIT, nullable=False, comment="the first unit key seen for the user"),
    Column("created_at", UtcDateTime(), nullable=False),
)

bandit_decisions = Table(
    "personify_bandit_decisions",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("decision_id", ID, primary_key=True),
    Column("policy", NAME, nullable=False),
    Column("timestamp", UtcDateTime(), nullable=False),
    Column("body", Text, nullable=False, comment="context, actions, chosen, propensities (JSON)"),
)
Index(
    "ix_personify_bandit_decisions_tenant_policy_ts",
    bandit_decisions.c.tenant,
    bandit_decisions.c.policy,
    bandit_decisions.c.timestamp,
)

decision_points = Table(
    "personify_decision_points",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("point", NAME, primary_key=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("config", Text, nullable=False, comment="policy kind and hyper-parameters (JSON)"),
    Column("state", Text, comment="the learned policy state (JSON), saved after updates"),
    Column("epoch", String(32), comment="changes with every configuration: its update log"),
    Column("state_seq", BigInteger, comment="the last update log id the state includes"),
)

EPOCH = String(32)

bandit_updates = Table(
    "personify_bandit_updates",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("tenant", TENANT, nullable=False),
    Column("point", NAME, nullable=False),
    Column("epoch", EPOCH, nullable=False),
    Column("decision_id", ID, nullable=False),
    Column("action", ID, nullable=False),
    Column("reward", Float, nullable=False),
    Column("context", Text, nullable=False, comment="the decision's feature vector (JSON)"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("origin", String(32), nullable=False, comment="the process that claimed the update"),
    UniqueConstraint(
        "tenant", "point", "epoch", "decision_id", "action",
        name="uq_personify_bandit_updates_claim",
    ),
)
Index(
    "ix_personify_bandit_updates_tenant_point_epoch_id",
    bandit_updates.c.tenant,
    bandit_updates.c.point,
    bandit_updates.c.epoch,
    bandit_updates.c.id,
)
