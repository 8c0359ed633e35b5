"""Statements run for every message the outbox sends, compiled once and run without the
per-execution machinery on SQLite.

SQLAlchemy writes the SQL of a Core statement and converts its values (the column types' bind
processors); running it through a ``Connection`` also builds an execution context, dispatches
events and wraps a result, and a unit of work checks a ``Connection`` out of the pool. On a
local SQLite file that costs several times the statement itself (profiled on the outbox's
send path: about 25 microseconds per statement and 20-40 per unit of work, against 5 for
SQLite). A :class:`Prepared` statement is compiled once per dialect; the units of
:meth:`personify.storage.sql.database.Database.prepared_write` / ``prepared_read`` run it on the
SQLite driver's connection (``BEGIN IMMEDIATE`` ... ``COMMIT``) and through an ordinary
``Connection`` on PostgreSQL, where the network round trip dwarfs the overhead. The SQL is the
same statement either way, so one adapter serves both databases.

Only for statements without expanding ``IN`` lists; reads are single statements (SQLite runs
one statement atomically without an explicit transaction).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.expression import Executable


@dataclass(frozen=True)
class _Compiled:
    """A statement's SQL for one dialect, its positional parameters and their processors."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    fixed: dict[str, Any]
    """Values the statement itself holds (a literal in ``.values()``), by parameter name."""

    def positional(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        values = []
        for name, process in zip(self.names, self.processors, strict=True):
            if name in params:
                value = params[name]
            elif name in self.fixed:
                value = self.fixed[name]
            else:
                raise KeyError(f"no value for the statement's parameter {name!r}")
            values.append(value if process is None or value is None else process(value))
        return tuple(values)


class Prepared:
    """A Core statement compiled once per dialect (see the module)."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            names = tuple(compiled.positiontup or ())
            binds = [compiled.binds[name] for name in names]
            if any(bind.expanding for bind in binds):
                raise ValueError("a prepared statement cannot hold an expanding IN list")
            found = _Compiled(
                sql=compiled.string,
                names=names,
                processors=tuple(
                    bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds
                ),
                fixed={
                    name: bind.effective_value
                    for name, bind in zip(names, binds, strict=True)
                    if not bind.required
                },
            )
            self._compiled[dialect.name] = found
        return found


class Unit(Protocol):
    """A unit of work running prepared statements."""

    def execute(self, statement: Prepared, params: Mapping[str, Any]) -> int:
        """Run a write; how many rows it changed."""
        ...

    def executemany(self, statement: Prepared, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run a write once per row of parameters."""
        ...

    def exists(self, statement: Prepared, params: Mapping[str, Any]) -> bool:
        """Whether a query returns a row."""
        ...


class SqliteUnit:
    """Prepared statements on the SQLite driver's connection."""

    def __init__(self, connection: sqlite3.Connection, dialect: Dialect) -> None:
        self._conn = connection
        self._dialect = dialect

    def execute(self, statement: Prepared, params: Mapping[str, Any]) -> int:
        compiled = statement.compiled(self._dialect)
        return self._conn.execute(compiled.sql, compiled.positional(params)).rowcount

    def executemany(self, statement: Prepared, rows: Sequence[Mapping[str, Any]]) -> None:
        compiled = statement.compiled(self._dialect)
        self._conn.executemany(compiled.sql, [compiled.positional(row) for row in rows])

    def exists(self, statement: Prepared, params: Mapping[str, Any]) -> bool:
        compiled = statement.compiled(self._dialect)
        return self._conn.execute(compiled.sql, compiled.positional(params)).fetchone() is not None


class ConnectionUnit:
    """Prepared statements through a SQLAlchemy ``Connection`` (any database)."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection

    def execute(self, statement: Prepared, params: Mapping[str, Any]) -> int:
        return int(self._conn.execute(statement.statement, dict(params)).rowcount)

    def executemany(self, statement: Prepared, rows: Sequence[Mapping[str, Any]]) -> None:
        self._conn.execute(statement.statement, [dict(row) for row in rows])

    def exists(self, statement: Prepared, params: Mapping[str, Any]) -> bool:
        return self._conn.execute(statement.statement, dict(params)).first() is not None
