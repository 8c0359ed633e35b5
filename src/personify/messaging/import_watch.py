"""Price drops and restocks in imported catalogues (``personify import items ...``).

The import job writes the catalogue directly, outside the API. :func:`watch_catalog` wraps the
job's catalogue store in an :class:`~personify.messaging.item_updates.ItemChangeWatcher` whose
changes go into the messaging state's durable queue (:mod:`.state_stores`: the PostgreSQL
database or the messaging SQLite file), where the API's messaging loop or
``personify messages worker`` hands them to the enabled price-drop / back-in-stock journeys.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from personify.messaging.item_updates import ItemChangeWatcher
from personify.messaging.state_stores import open_item_change_queue
from personify.storage.registry import Stores
from personify.storage.sql.messaging_definitions import SqlMessagingDefinitions

JOURNEY_KIND = "journey"
"""The kind of journey documents in the definitions table."""


def has_item_journeys(definitions: SqlMessagingDefinitions, tenant: str) -> bool:
    """Whether the tenant has an enabled journey triggered by item updates."""
    for stored in definitions.list(tenant, JOURNEY_KIND, enabled_only=True):
        trigger = stored.body.get("trigger")
        if isinstance(trigger, dict) and trigger.get("item_update"):
            return True
    return False


def watch_catalog(
    stores: Stores,
    tenant: str,
    *,
    messaging_db_path: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Callable[[], None]:
    """When ``tenant`` has an enabled item-update journey, make ``stores.catalog`` queue the
    price drops and restocks it stores for that tenant (in the messaging state of
    ``stores.engine_url``; ``messaging_db_path`` is the setting of that name). Returns the
    function that closes the queue; nothing is wrapped (and nothing opened) otherwise, or when
    the messaging state is only in memory."""
    if stores.database is None:
        return lambda: None
    if not has_item_journeys(SqlMessagingDefinitions(stores.database), tenant):
        return lambda: None
    queue = open_item_change_queue(
        stores.engine_url, messaging_db_path, database=stores.database
    )
    if queue is None:
        return lambda: None
    stores.catalog = ItemChangeWatcher(
        stores.catalog,
        lambda _tenant, changes: queue.record(changes),
        wants=lambda written: written == tenant,
        clock=clock,
    )
    close: Callable[[], None] | None = getattr(queue, "close", None)
    return close or (lambda: None)
