"""Where the messaging state lives for a database URL, and the one opener of its stores.

The state is the outbox (with its tracked links), journey runs, unsubscribes, the in-app inbox,
the item-change queue and who viewed which item. One set of adapters keeps it,
:mod:`.sql_stores` on the ``personify_msg_*`` tables (migration ``0006_messaging_state``); only
the database differs:

- ``postgresql://...``: the PostgreSQL database itself, so every machine pointed at it shares
  one outbox; nothing is written to a local file.
- ``sqlite:///path.db``: a SQLite file next to it, ``<name>.messaging.db``
  (``messaging_db_path`` picks another file), so the outbox worker's commits never wait for
  the events' writer lock. It is migrated like any database and kept with
  ``synchronous=NORMAL`` (WAL): a commit survives the process being killed, the last ones may
  be lost to a power cut. A file written by a release that kept its own ``msg_*`` tables is
  adopted once when opened (:func:`adopt_legacy`).
- ``memory://``: SQLite in memory (the process's own ``memory://`` database when given), for
  tests and single-process development.
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
    """The messaging state in the SQLite file ``path``: created, migrated and, when an earlier
    release wrote it, adopted (:func:`adopt_legacy`); ``close()`` closes its connections."""
    return _on(_file_database(path), StateLocation("file", str(path)), owns=True)


def _file_database(path: str | Path) -> Database:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    database = open_database(f"sqlite:///{path}", sqlite_synchronous="NORMAL")
    try:
        adopt_legacy(database)
    except BaseException:
        database.dispose()
        raise
    return database


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
        return SqlItemChangeStore(_file_database(location.path), owns_database=True)
    if database is None:
        return SqlItemChangeStore(open_database(database_url), owns_database=True)
    return SqlItemChangeStore(database)


_MICROS = "CAST(ROUND({} * 1000000) AS INTEGER)"
"""Epoch seconds (the legacy REAL columns) as the integer microseconds of ``UtcDateTime``."""


def _adopt(table: str, columns: str, times: tuple[str, ...] = (), blobs: tuple[str, ...] = (),
           order: str = "rowid") -> str:
    names = [c.strip() for c in columns.split(",")]
    values = [
        _MICROS.format(c) if c in times else f"CAST({c} AS TEXT)" if c in blobs else c
        for c in names
    ]
    return (f"INSERT OR IGNORE INTO personify_{table} ({', '.join(names)}) "
            f"SELECT {', '.join(values)} FROM {table} ORDER BY {order}")


LEGACY_TABLES = {
    "msg_outbox": _adopt(
        "msg_outbox",
        "message_id, tenant, user_id, channel, template, dedup_key, context, transactional, "
        "purpose, status, not_before, attempts, lease_until, claim_token, send_started, "
        "in_doubt, last_error, created_at, sent_at",
        times=("not_before", "lease_until", "created_at", "sent_at"), blobs=("context",)),
    "msg_links": _adopt("msg_links", "message_id, link_id, url, item_id, recommendation_id"),
    "msg_suppressions": _adopt("msg_suppressions", "tenant, user_id, channel, created_at, reason",
                               times=("created_at",)),
    "msg_inbox": _adopt("msg_inbox",
                        "entry_id, tenant, user_id, subject, text, html, data, created_at, read_at",
                        times=("created_at", "read_at"), blobs=("data",)),
    "msg_journey_runs": _adopt(
        "msg_journey_runs",
        "run_id, tenant, journey, user_id, entered_at, step_index, status, wake_at, "
        "exit_reason, context, updated_at",
        times=("entered_at", "wake_at", "updated_at"), blobs=("context",)),
    "msg_item_changes": _adopt("msg_item_changes",
                               "change_id, tenant, item_id, kind, at, data, lease_until",
                               times=("at", "lease_until"), blobs=("data",), order="change_id"),
    "msg_item_views": _adopt("msg_item_views", "tenant, item_id, user_id, viewed_at",
                             times=("viewed_at",)),
    "msg_item_view_backfills": _adopt("msg_item_view_backfills", "tenant, at", times=("at",)),
}
"""The tables a messaging file of an earlier release kept (times as REAL epoch seconds, JSON
as BLOB), each with the statement that copies its rows into the current table."""


def adopt_legacy(database: Database) -> int:
    """Move the rows of a legacy messaging file (:data:`LEGACY_TABLES`) into the current tables
    and drop the legacy ones, in one transaction (a crash leaves the file as it was; several
    processes opening it at once adopt it once). Returns how many tables were adopted."""
    with database.write() as conn:
        present = {
            name for (name,) in conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'msg_%'")
        }
        adopted = [name for name in LEGACY_TABLES if name in present]
        for name in adopted:
            conn.exec_driver_sql(LEGACY_TABLES[name])
        for name in adopted:
            conn.exec_driver_sql(f"DROP TABLE {name}")
    return len(adopted)
