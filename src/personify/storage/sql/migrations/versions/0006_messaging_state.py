"""Messaging state in the database: the outbox, tracked links, unsubscribes, the inbox, journey
runs, the item-change queue and item views (see ``personify.storage.sql.messaging_tables``).
PostgreSQL deployments keep them here instead of a local SQLite file.

Revision ID: 0006_messaging_state
Revises: 0005_bandit_updates
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from personify.storage.sql._columns import UtcDateTime

revision = "0006_messaging_state"
down_revision = "0005_bandit_updates"
branch_labels = None
depends_on = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TENANT = sa.String(64)
ID = sa.String(128)
NAME = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "personify_msg_outbox",
        sa.Column("seq", SERIAL, autoincrement=True, nullable=False, comment="enqueue order"),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("channel", NAME, nullable=False),
        sa.Column("template", NAME, nullable=False),
        sa.Column("dedup_key", sa.String(512), nullable=False),
        sa.Column("context", sa.Text, nullable=False, comment="the render context as JSON"),
        sa.Column("transactional", sa.Boolean, nullable=False),
        sa.Column("purpose", NAME),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("not_before", UtcDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_until", UtcDateTime()),
        sa.Column("claim_token", sa.String(128)),
        sa.Column("send_started", sa.Boolean, nullable=False),
        sa.Column("in_doubt", sa.Boolean, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("sent_at", UtcDateTime()),
        sa.PrimaryKeyConstraint("seq", name="pk_personify_msg_outbox"),
        sa.UniqueConstraint("message_id", name="uq_personify_msg_outbox_message_id"),
        sa.UniqueConstraint(
            "tenant", "dedup_key", name="uq_personify_msg_outbox_tenant_dedup_key"
        ),
    )
    op.create_index(
        "ix_personify_msg_outbox_status_not_before",
        "personify_msg_outbox",
        ["status", "not_before"],
    )
    op.create_index(
        "ix_personify_msg_outbox_sent",
        "personify_msg_outbox",
        ["tenant", "user_id", "channel", "sent_at"],
    )
    op.create_table(
        "personify_msg_links",
        sa.Column("message_id", ID, nullable=False),
        sa.Column("link_id", NAME, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("item_id", ID),
        sa.Column("recommendation_id", ID),
        sa.PrimaryKeyConstraint("message_id", "link_id", name="pk_personify_msg_links"),
    )
    op.create_table(
        "personify_msg_suppressions",
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column(
            "channel", NAME, nullable=False, comment="a channel, or * for every marketing one"
        ),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant", "user_id", "channel", name="pk_personify_msg_suppressions"
        ),
    )
    op.create_table(
        "personify_msg_inbox",
        sa.Column("entry_id", ID, nullable=False),
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False, comment="JSON"),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("read_at", UtcDateTime()),
        sa.PrimaryKeyConstraint("entry_id", name="pk_personify_msg_inbox"),
    )
    op.create_index(
        "ix_personify_msg_inbox_user", "personify_msg_inbox", ["tenant", "user_id", "created_at"]
    )
    op.create_table(
        "personify_msg_journey_runs",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("journey", NAME, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("entered_at", UtcDateTime(), nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("wake_at", UtcDateTime()),
        sa.Column("exit_reason", sa.Text),
        sa.Column("context", sa.Text, nullable=False, comment="JSON"),
        sa.Column("updated_at", UtcDateTime()),
        sa.PrimaryKeyConstraint("run_id", name="pk_personify_msg_journey_runs"),
    )
    op.create_index(
        "ix_personify_msg_journey_runs_user",
        "personify_msg_journey_runs",
        ["tenant", "user_id", "status"],
    )
    op.create_index(
        "ix_personify_msg_journey_runs_due",
        "personify_msg_journey_runs",
        ["tenant", "status", "wake_at"],
    )
    op.create_table(
        "personify_msg_item_changes",
        sa.Column("change_id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("item_id", ID, nullable=False),
        sa.Column("kind", NAME, nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("data", sa.Text, nullable=False, comment="JSON"),
        sa.Column("lease_until", UtcDateTime()),
        sa.PrimaryKeyConstraint("change_id", name="pk_personify_msg_item_changes"),
    )
    op.create_index("ix_personify_msg_item_changes_at", "personify_msg_item_changes", ["at"])
    op.create_table(
        "personify_msg_item_views",
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("item_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("viewed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant", "item_id", "user_id", name="pk_personify_msg_item_views"
        ),
    )
    op.create_index(
        "ix_personify_msg_item_views_viewed_at", "personify_msg_item_views", ["viewed_at"]
    )
    op.create_index(
        "ix_personify_msg_item_views_user", "personify_msg_item_views", ["tenant", "user_id"]
    )
    op.create_table(
        "personify_msg_item_view_backfills",
        sa.Column("tenant", TENANT, nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", name="pk_personify_msg_item_view_backfills"),
    )


def downgrade() -> None:
    op.drop_table("personify_msg_item_view_backfills")
    op.drop_index("ix_personify_msg_item_views_user", table_name="personify_msg_item_views")
    op.drop_index("ix_personify_msg_item_views_viewed_at", table_name="personify_msg_item_views")
    op.drop_table("personify_msg_item_views")
    op.drop_index("ix_personify_msg_item_changes_at", table_name="personify_msg_item_changes")
    op.drop_table("personify_msg_item_changes")
    op.drop_index("ix_personify_msg_journey_runs_due", table_name="personify_msg_journey_runs")
    op.drop_index("ix_personify_msg_journey_runs_user", table_name="personify_msg_journey_runs")
    op.drop_table("personify_msg_journey_runs")
    op.drop_index("ix_personify_msg_inbox_user", table_name="personify_msg_inbox")
    op.drop_table("personify_msg_inbox")
    op.drop_table("personify_msg_suppressions")
    op.drop_table("personify_msg_links")
    op.drop_index("ix_personify_msg_outbox_sent", table_name="personify_msg_outbox")
    op.drop_index(
        "ix_personify_msg_outbox_status_not_before", table_name="personify_msg_outbox"
    )
    op.drop_table("personify_msg_outbox")
