"""Alembic environment: runs on the connection handed over by ``personify.storage.sql.migrate``."""

from __future__ import annotations

from alembic import context

from personify.storage.sql.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError(
        "Personify migrations run in code: use `personify db upgrade` or "
        "personify.storage.sql.migrate.upgrade(url)"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
