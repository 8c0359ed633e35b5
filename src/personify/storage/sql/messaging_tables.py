"""SQL tables of messaging: the definitions (templates, journeys, campaigns) and the state the
outbox worker and journeys keep, on the shared metadata of ``schema.py``.

Migration ``0004_messaging`` creates the definitions table and ``0006_messaging_state`` the
state tables (outbox, links, unsubscribes, inbox, journey runs, item changes and views); the
migration contract compares them with these definitions, so change both together.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text, UniqueConstraint

from personify.storage.sql._columns import UtcDateTime
from personify.storage.sql.schema import ID, NAME, SERIAL, TENANT, metadata

KIND = String(16)
"""``template``, ``journey`` or ``campaign``."""

messaging_definitions = Table(
    "personify_messaging_definitions",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("kind", KIND, primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("body", Text, nullable=False, comment="the whole definition as JSON"),
)
Index(
    "ix_personify_messaging_definitions_kind_enabled",
    messaging_definitions.c.kind,
    messaging_definitions.c.enabled,
)


# -- messaging state: the outbox, tracked links, unsubscribes, the inbox, journey runs, the
# item-change queue and who viewed which item (migration ``0006_messaging_state``), read and
# written by ``personify.messaging.sql_stores`` in the PostgreSQL database, in memory, or in a
# SQLite deployment's messaging file (``personify.messaging.state_stores``).

DEDUP_KEY = String(512)
STATUS = String(16)

msg_outbox = Table(
    "personify_msg_outbox",
    metadata,
    Column("seq", SERIAL, primary_key=True, autoincrement=True, comment="enqueue order"),
    Column("message_id", ID, nullable=False, unique=True),
    Column("tenant", TENANT, nullable=False),
    Column("user_id", ID, nullable=False),
    Column("channel", NAME, nullable=False),
    Column("template", NAME, nullable=False),
    Column("dedup_key", DEDUP_KEY, nullable=False),
    Column("context", Text, nullable=False, comment="the render context as JSON"),
    Column("transactional", Boolean, nullable=False),
    Column("purpose", NAME),
    Column("status", STATUS, nullable=False),
    Column("not_before", UtcDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("lease_until", UtcDateTime()),
    Column("claim_token", String(128)),
    Column("send_started", Boolean, nullable=False),
    Column("in_doubt", Boolean, nullable=False),
    Column("last_error", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime()),
    UniqueConstraint("tenant", "dedup_key"),
)
Index("ix_personify_msg_outbox_status_not_before", msg_outbox.c.status, msg_outbox.c.not_before)
Index(
    "ix_personify_msg_outbox_sent",
    msg_outbox.c.tenant,
    msg_outbox.c.user_id,
    msg_outbox.c.channel,
    msg_outbox.c.sent_at,
)

msg_links = Table(
    "personify_msg_links",
    metadata,
    Column("message_id", ID, primary_key=True),
    Column("link_id", NAME, primary_key=True),
    Column("url", Text, nullable=False),
    Column("item_id", ID),
    Column("recommendation_id", ID),
)

msg_suppressions = Table(
    "personify_msg_suppressions",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("user_id", ID, primary_key=True),
    Column("channel", NAME, primary_key=True, comment="a channel, or * for every marketing one"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("reason", Text, nullable=False),
)

msg_inbox = Table(
    "personify_msg_inbox",
    metadata,
    Column("entry_id", ID, primary_key=True),
    Column("tenant", TENANT, nullable=False),
    Column("user_id", ID, nullable=False),
    Column("subject", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("data", Text, nullable=False, comment="JSON"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("read_at", UtcDateTime()),
)
Index(
    "ix_personify_msg_inbox_user",
    msg_inbox.c.tenant,
    msg_inbox.c.user_id,
    msg_inbox.c.created_at,
)

msg_journey_runs = Table(
    "personify_msg_journey_runs",
    metadata,
    Column("run_id", ID, primary_key=True),
    Column("tenant", TENANT, nullable=False),
    Column("journey", NAME, nullable=False),
    Column("user_id", ID, nullable=False),
    Column("entered_at", UtcDateTime(), nullable=False),
    Column("step_index", Integer, nullable=False),
    Column("status", STATUS, nullable=False),
    Column("wake_at", UtcDateTime()),
    Column("exit_reason", Text),
    Column("context", Text, nullable=False, comment="JSON"),
    Column("updated_at", UtcDateTime()),
)
Index(
    "ix_personify_msg_journey_runs_user",
    msg_journey_runs.c.tenant,
    msg_journey_runs.c.user_id,
    msg_journey_runs.c.status,
)
Index(
    "ix_personify_msg_journey_runs_due",
    msg_journey_runs.c.tenant,
    msg_journey_runs.c.status,
    msg_journey_runs.c.wake_at,
)

msg_item_changes = Table(
    "personify_msg_item_changes",
    metadata,
    Column("change_id", SERIAL, primary_key=True, autoincrement=True),
    Column("tenant", TENANT, nullable=False),
    Column("item_id", ID, nullable=False),
    Column("kind", NAME, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("data", Text, nullable=False, comment="JSON"),
    Column("lease_until", UtcDateTime()),
)
Index("ix_personify_msg_item_changes_at", msg_item_changes.c.at)

msg_item_views = Table(
    "personify_msg_item_views",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("item_id", ID, primary_key=True),
    Column("user_id", ID, primary_key=True),
    Column("viewed_at", UtcDateTime(), nullable=False),
)
Index("ix_personify_msg_item_views_viewed_at", msg_item_views.c.viewed_at)
Index("ix_personify_msg_item_views_user", msg_item_views.c.tenant, msg_item_views.c.user_id)

msg_item_view_backfills = Table(
    "personify_msg_item_view_backfills",
    metadata,
    Column("tenant", TENANT, primary_key=True),
    Column("at", UtcDateTime(), nullable=False),
)

MESSAGING_STATE_TABLES = [
    msg_outbox, msg_links, msg_suppressions, msg_inbox, msg_journey_runs, msg_item_changes,
    msg_item_views, msg_item_view_backfills,
]
"""The messaging state's tables (what a state kept in memory creates)."""
