"""Where the messaging state lives for a database URL, and the one opener of its stores.

The state is the outbox (with its tracked links), journey runs, unsubscribes, the in-app inbox,
the item-change queue and who viewed which item:

- ``postgresql://...``: in the PostgreSQL database itself (:mod:`.sql_stores`, migration
  ``0006_messaging_state``), so every machine pointed at it shares one outbox; nothing is
  written to a local file.
- ``memory://``: the same adapters on SQLite in memory (the process's own ``memory://``
  database when given), for tests and single-process development.
- ``sqlite:///path.db``: in a SQLite file next to it, ``<name>.messaging.db``
  (``messaging_db_path`` picks another file), through :mod:`.sqlite_stores`, plain ``sqlite3``:
  the SQL adapters on that file cost about 16 times the CPU per outbox operation (claim, send
  mark, result; measured 2.4 ms against 0.15 ms per message), which the worker's throughput on
  a single machine pays in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa

from personify.domain.errors import ConfigurationError
from personify.messaging.item_updates import ItemChangeStore, ItemViewStore
from personify.messaging.ports import InboxStore, JourneyStateStore, OutboxStore, SuppressionStore
from personify.messaging.sql_stores import (
    SqlInboxStore,
    SqlItemChangeStore,
    SqlItemViewStore,
    SqlJourneyStateStore,
    SqlOutboxStore,
    SqlSuppressionStore,
)
from personify.messaging.sqlite_stores import (
    SqliteInboxStore,
    SqliteItemChangeStore,
    SqliteItemViewStore,
    SqliteJourneyStateStore,
    SqliteOutboxStore,
    SqliteSuppressionStore,
)
from personify.storage.registry import open_database
from personify.storage.sql.database import Database, create_engine, normalize_url
from personify.storage.sql.messaging_tables import MESSAGING_STATE_TABLES

StateKind = Literal["memory", "file", "database"]


@dataclass(frozen=True)
class StateLocation:
    """Where the messaging state of one configuration lives; ``path`` only for ``file``."""

    kind: StateKind
    path: str | None = None


def state_location(database_url: str, configured_path: str | None = None) -> StateLocation:
    """The location for ``database_url`` (see the module). ``configured_path`` (the
    ``messaging_db_path`` setting) names the SQLite file; it is refused with PostgreSQL, whose
    deployments keep the state in the database."""
    url = sa.make_url(normalize_url(database_url))
    if url.get_backend_name() == "postgresql":
        if configured_path:
            raise ConfigurationError(
                "messaging_db_path applies to a SQLite database only: with PostgreSQL the "
                "messaging state is kept in the database",
                field="messaging_db_path",
                accepted="unset with a postgresql:// database_url",
            )
        return StateLocation("database")
    if configured_path:
        return StateLocation("file", configured_path)
    database = url.database or ""
    if database in ("", ":memory:"):
        return StateLocation("memory")
    path = Path(database)
    return StateLocation("file", str(path.with_name(f"{path.stem}.messaging.db")))


def messaging_db_path(database_url: str, configured_path: str | None = None) -> str | None:
    """The SQLite file of the messaging state; None when it is in memory or in the database."""
    return state_location(database_url, configured_path).path


@dataclass
class StateStores:
    """The six messaging state stores of one location (see :func:`open_state_stores`)."""

    outbox: OutboxStore
    suppressions: SuppressionStore
    inbox: InboxStore
    runs: JourneyStateStore
    item_changes: ItemChangeStore
    item_views: ItemViewStore
    location: StateLocation

    def close(self) -> None:
        """Close what the stores opened (a shared database is left to its owner)."""
        for store in (self.outbox, self.suppressions, self.inbox, self.runs, self.item_changes,
                      self.item_views):
            close = getattr(store, "close", None)
            if close is not None:
                close()


def open_state_stores(
    database_url: str,
    configured_path: str | None = None,
    *,
    database: Database | None = None,
) -> StateStores:
    """The messaging state stores for a configuration. In the database (PostgreSQL, or
    ``memory://``) they share ``database`` (the process's engine) when given; otherwise they
    open their own, released by the outbox store's ``close()``."""
    location = state_location(database_url, configured_path)
    if location.kind == "file":
        assert location.path is not None
        return open_state_file(location.path)
    if database is None:
        return memory_state() if location.kind == "memory" else _on(
            open_database(database_url), location, owns=True)
    return _on(database, location, owns=False)


def open_state_file(path: str | Path) -> StateStores:
    """The messaging state in the SQLite file ``path`` (created when missing); ``close()``
    closes its connections."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return StateStores(
        SqliteOutboxStore(path), SqliteSuppressionStore(path), SqliteInboxStore(path),
        SqliteJourneyStateStore(path), SqliteItemChangeStore(path), SqliteItemViewStore(path),
        StateLocation("file", str(path)),
    )


def memory_state() -> StateStores:
    """A fresh messaging state in memory (its own SQLite database, only the state tables)."""
    database = Database(create_engine("memory://"))
    MESSAGING_STATE_TABLES[0].metadata.create_all(database.engine, tables=MESSAGING_STATE_TABLES)
    return _on(database, StateLocation("memory"), owns=True)


def _on(database: Database, location: StateLocation, *, owns: bool) -> StateStores:
    return StateStores(
        SqlOutboxStore(database, owns_database=owns), SqlSuppressionStore(database),
        SqlInboxStore(database), SqlJourneyStateStore(database), SqlItemChangeStore(database),
        SqlItemViewStore(database), location,
    )


def open_item_change_queue(
    database_url: str,
    configured_path: str | None = None,
    *,
    database: Database | None = None,
) -> ItemChangeStore | None:
    """Only the item-change queue (what an import job writes into); None in memory."""
    location = state_location(database_url, configured_path)
    if location.kind == "memory":
        return None
    if location.kind == "file":
        assert location.path is not None
        Path(location.path).parent.mkdir(parents=True, exist_ok=True)
        return SqliteItemChangeStore(location.path)
    if database is None:
        return SqlItemChangeStore(open_database(database_url), owns_database=True)
    return SqlItemChangeStore(database)
