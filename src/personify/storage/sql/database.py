"""The shared engine: URL schemes, SQLite pragmas, and read / write units of work.

Accepted URLs: ``sqlite:///path.db`` (embedded default), ``postgresql://...`` or
``postgresql+psycopg://...`` (psycopg 3), and ``memory://`` (SQLite in memory, for tests).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from personify.domain.errors import ConfigurationError
from personify.storage.sql.prepared import ConnectionUnit, SqliteUnit, Unit

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
SqliteSync = Literal["FULL", "NORMAL"]
"""SQLite's ``synchronous``: ``FULL`` syncs the journal at every commit (an acknowledged commit
survives a power cut), ``NORMAL`` (with WAL) only at checkpoints (it survives the process being
killed, not the machine losing power)."""


def create_engine(url: str, *, sqlite_synchronous: SqliteSync = "FULL") -> Engine:
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
    _configure_sqlite(engine, wal=not in_memory, synchronous=sqlite_synchronous)
    return engine


BEGIN_MODE = "personify_sqlite_begin"
"""Key of a pooled SQLite connection's ``info``: the ``BEGIN`` its next transaction issues
(``IMMEDIATE`` takes the writer lock up front; ``DEFERRED`` when unset). See
:func:`begin_immediate`."""


@contextmanager
def begin_immediate(conn: Connection) -> Iterator[None]:
    """Inside the block, a transaction begun on ``conn`` (SQLite) takes the writer lock at once."""
    info = conn.connection.info
    info[BEGIN_MODE] = "IMMEDIATE"
    try:
        yield
    finally:
        info.pop(BEGIN_MODE, None)


def _configure_sqlite(engine: Engine, *, wal: bool, synchronous: SqliteSync) -> None:
    """Pragmas on every connection, and explicit BEGIN so writers can take the lock up front.

    The BEGIN is the dialect's: an engine event (``begin``) would do it as well, but any engine
    event makes SQLAlchemy dispatch events around every statement, which costs more than a
    short SQLite statement itself (measured: 34 against 25 microseconds per cached SELECT)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver must not BEGIN on its own
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if wal:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        cursor.close()

    def do_begin(connection: Any) -> None:  # the pool's proxied connection
        mode = connection.info.get(BEGIN_MODE, "DEFERRED")
        connection.driver_connection.execute(f"BEGIN {mode}")

    engine.dialect.do_begin = do_begin  # type: ignore[method-assign, assignment]


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
                with begin_immediate(conn):
                    transaction = conn.begin()
            else:
                transaction = conn.begin()
            with transaction:
                yield conn

    @contextmanager
    def prepared_write(self) -> Iterator[Unit]:
        """A transaction, like :meth:`write`, that runs :class:`Prepared` statements; on SQLite
        on the driver's connection (see :mod:`personify.storage.sql.prepared`)."""
        if self.dialect != "sqlite":
            with self.write() as conn:
                yield ConnectionUnit(conn)
            return
        with self._guard():
            pooled = self.engine.raw_connection()
            try:
                driver: sqlite3.Connection = pooled.driver_connection  # type: ignore[assignment]
                driver.execute("BEGIN IMMEDIATE")
                try:
                    yield SqliteUnit(driver, self.engine.dialect)
                except BaseException:
                    driver.rollback()
                    raise
                driver.commit()
            finally:
                pooled.close()

    @contextmanager
    def prepared_read(self) -> Iterator[Unit]:
        """One read statement (:class:`Prepared`), outside an explicit transaction on SQLite."""
        if self.dialect != "sqlite":
            with self.read() as conn:
                yield ConnectionUnit(conn)
            return
        with self._guard():
            pooled = self.engine.raw_connection()
            try:
                driver: sqlite3.Connection = pooled.driver_connection  # type: ignore[assignment]
                yield SqliteUnit(driver, self.engine.dialect)
            finally:
                pooled.close()

    def _guard(self) -> threading.RLock | nullcontext[None]:
        return self._lock if self._lock is not None else nullcontext()

    def dispose(self) -> None:
        """Close the pool; with the single shared ``memory://`` connection, only once no other
        thread is inside a unit of work on it (closing it under a running query crashes
        SQLite's C library, e.g. a background warm-up still scanning at shutdown)."""
        with self._guard():
            self.engine.dispose()
