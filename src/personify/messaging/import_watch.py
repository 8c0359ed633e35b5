"""Price drops and restocks in imported catalogues (``personify import items ...``).

The import job writes the catalogue directly, outside the API. :func:`watch_catalog` wraps the
job's catalogue store in an :class:`~personify.messaging.item_updates.ItemChangeWatcher` whose
changes go into the messaging SQLite file's durable queue, where the API's messaging loop or
``personify messages worker`` hands them to the enabled price-drop / back-in-stock journeys.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from personify.messaging.item_updates import ItemChangeWatcher
from personify.messaging.sqlite_stores import SqliteItemChangeStore
from personify.storage.registry import Stores
from personify.storage.sql.database import normalize_url
from personify.storage.sql.messaging_definitions import SqlMessagingDefinitions

DEFAULT_MESSAGING_DB = "var/messaging.db"
JOURNEY_KIND = "journey"
"""The kind of journey documents in the definitions table."""


def messaging_db_path(database_url: str, configured: str | None = None) -> str | None:
    """The SQLite file of the messaging state for a database URL (``configured`` wins): next to
    a SQLite database (``<name>.messaging.db``), :data:`DEFAULT_MESSAGING_DB` for others, None
    (in memory) for an in-memory database."""
    if configured:
        return configured
    url = sa.make_url(normalize_url(database_url))
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:"):
            return None
        path = Path(database)
        return str(path.with_name(f"{path.stem}.messaging.db"))
    return DEFAULT_MESSAGING_DB


def has_item_journeys(definitions: SqlMessagingDefinitions, tenant: str) -> bool:
    """Whether the tenant has an enabled journey triggered by item updates."""
    for stored in definitions.list(tenant, JOURNEY_KIND, enabled_only=True):
        trigger = stored.body.get("trigger")
        if isinstance(trigger, dict) and trigger.get("item_update"):
            return True
    return False


def watch_catalog(
    stores: Stores,
    path: str | None,
    tenant: str,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Callable[[], None]:
    """When ``tenant`` has an enabled item-update journey, make ``stores.catalog`` queue the
    price drops and restocks it stores for that tenant. Returns the function that closes the
    queue; nothing is wrapped (and no file opened) otherwise, or without a messaging file or a
    SQL database."""
    if path is None or stores.database is None:
        return lambda: None
    if not has_item_journeys(SqlMessagingDefinitions(stores.database), tenant):
        return lambda: None
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    queue = SqliteItemChangeStore(path)
    stores.catalog = ItemChangeWatcher(
        stores.catalog,
        lambda _tenant, changes: queue.record(changes),
        wants=lambda written: written == tenant,
        clock=clock,
    )
    return queue.close
