"""The shared engine: URL schemes, SQLite pragmas, and read / write units of work.

Accepted URLs: ``sqlite:///path.db`` (embedded default), ``postgresql://...`` or
``postgresql+psycopg://...`` (psycopg 3), and ``memory://`` (SQLite in memory, for tests).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from personify.domain.errors import ConfigurationError

ACCEPTED_SCHEMES = "sqlite:///path.db, postgresql://..., postgresql+psycopg://..., memory://"
SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another one before giving up."""
SQLITE_CACHE_KIB = 65_536
"""Page cache per connection (grows only as used): random event ids make the unique index a
random-access structure, which the 2 MiB default cache turns into disk reads."""


def normalize_url(url: str) -> str:
    """The SQLAlchemy URL for a Personify database URL; ConfigurationError for unknown schemes."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"invalid database URL {url!r}", field="database_url", accepted=ACCEPTED_SCHEMES
        )
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme == "memory":
        return "sqlite://"
    if scheme in ("sqlite", "sqlite+pysqlite"):
        return f"sqlite://{rest}"
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return f"postgresql+psycopg://{rest}"
    raise ConfigurationError(
        f"unknown database URL scheme {scheme!r}", field="database_url", accepted=ACCEPTED_SCHEMES
    )


PG_CONNECT_TIMEOUT_S = 10
"""Seconds to wait for PostgreSQL to accept a connection."""


def create_engine(url: str) -> Engine:
    """An engine for ``url`` with the settings Personify relies on (durability, busy waits)."""
    sa_url = sa.make_url(normalize_url(url))
    if sa_url.get_backend_name() == "postgresql":
        # an unreachable or silent server fails after this long instead of hanging (the URL's
        # own ?connect_timeout= wins)
        connect_args = {} if "connect_timeout" in sa_url.query else {
            "connect_timeout": PG_CONNECT_TIMEOUT_S}
        return sa.create_engine(sa_url, pool_pre_ping=True, pool_size=10, max_overflow=30,
                                connect_args=connect_args)
    database = sa_url.database or ""
    in_memory = database in ("", ":memory:")
    if in_memory:
        engine = sa.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        # as many connections as the API's worker threads (40): WAL readers never block
        engine = sa.create_engine(
            sa_url,
            pool_size=40,
            max_overflow=10,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
    _configure_sqlite(engine, wal=not in_memory)
    return engine


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    """Pragmas on every connection, and explicit BEGIN so writers can take the lock up front."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver must not BEGIN on its own
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if wal:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")  # an acknowledged commit survives a crash
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """One engine shared by every store, handing out short read and write units of work.

    On SQLite a write begins with ``BEGIN IMMEDIATE`` (the writer lock is taken before the first
    read, so read-modify-write never fails half way); ``memory://`` has a single connection, so
    its units of work are serialised by a lock.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._lock: threading.RLock | None = (
            threading.RLock() if isinstance(engine.pool, StaticPool) else None
        )

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (one snapshot; rolled back at the end)."""
        with self._guard(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction committed when the block ends without an error."""
        with self._guard(), self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def _guard(self) -> threading.RLock | nullcontext[None]:
        return self._lock if self._lock is not None else nullcontext()

    def dispose(self) -> None:
        """Close the pool; with the single shared ``memory://`` connection, only once no other
        thread is inside a unit of work on it (closing it under a running query crashes
        SQLite's C library, e.g. a background warm-up still scanning at shutdown)."""
        with self._guard():
            self.engine.dispose()
