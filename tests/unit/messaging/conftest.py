"""Fixtures of the messaging tests: the stores on every database they run on (memory, the
SQLite messaging file, the shared database on SQLite and on PostgreSQL), a fake clock, a
recording sender."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from personify.domain.users import User
from personify.messaging import sql_stores
from personify.messaging.channels import SendError
from personify.messaging.records import OutboxMessage
from personify.messaging.state_stores import StateStores, memory_state, open_state_file
from personify.messaging.templates import RenderedMessage
from personify.storage.registry import open_stores
from personify.storage.sql.database import Database

ADAPTERS = [
    "memory",
    "sqlite",
    "sql-sqlite",
    pytest.param("sql-postgres", marks=pytest.mark.postgres),
]
"""Every database of the messaging stores: in memory, the SQLite messaging file, and the shared
database on SQLite and on PostgreSQL."""


@contextmanager
def sql_database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh, migrated database for the SQL adapters (``sql-sqlite`` / ``sql-postgres``)."""
    if kind == "sql-postgres":
        url = str(request.getfixturevalue("postgres_url"))
    else:
        url = f"sqlite:///{tmp_path / f'personify-{len(list(tmp_path.iterdir()))}.db'}"
    with open_stores(url) as opened:
        assert opened.database is not None
        yield opened.database


class FakeClock:
    """A settable clock for deterministic tests."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


@dataclass
class RecordingSender:
    """A channel that keeps what it was asked to send, optionally failing first."""

    sent: list[tuple[OutboxMessage, RenderedMessage]] = field(default_factory=list)
    failures: list[SendError] = field(default_factory=list)
    consent_purpose: str | None = "email_marketing"

    def send(self, message: OutboxMessage, rendered: RenderedMessage, user: User) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((message, rendered))

    def close(self) -> None:
        return None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))  # a Monday, noon UTC


@dataclass
class Stores:
    outbox: object
    suppressions: object
    inbox: object
    runs: object


@pytest.fixture(params=ADAPTERS)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """The same tests run against every adapter."""
    if request.param.startswith("sql-"):
        with sql_database(request.param, request, tmp_path) as db:
            yield Stores(
                sql_stores.SqlOutboxStore(db),
                sql_stores.SqlSuppressionStore(db),
                sql_stores.SqlInboxStore(db),
                sql_stores.SqlJourneyStateStore(db),
            )
        return
    state = memory_state() if request.param == "memory" else open_state_file(
        tmp_path / "messaging.sqlite")
    yield of_state(state)
    state.close()


def of_state(state: StateStores) -> Stores:
    return Stores(state.outbox, state.suppressions, state.inbox, state.runs)


def in_memory() -> Stores:
    """The four stores on a fresh in-memory database."""
    return of_state(memory_state())


@pytest.fixture
def recording_sender() -> RecordingSender:
    return RecordingSender()
