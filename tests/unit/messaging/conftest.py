"""Fixtures of the messaging tests: both store adapters, a fake clock, a recording sender."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from personify.domain.users import User
from personify.messaging import memory_stores, sqlite_stores
from personify.messaging.channels import SendError
from personify.messaging.records import OutboxMessage
from personify.messaging.templates import RenderedMessage


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


@pytest.fixture(params=["memory", "sqlite"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """The same tests run against the in-memory and the SQLite-file adapters."""
    if request.param == "memory":
        yield Stores(
            memory_stores.MemoryOutboxStore(),
            memory_stores.MemorySuppressionStore(),
            memory_stores.MemoryInboxStore(),
            memory_stores.MemoryJourneyStateStore(),
        )
        return
    db = tmp_path / "messaging.sqlite"
    opened = Stores(
        sqlite_stores.SqliteOutboxStore(db),
        sqlite_stores.SqliteSuppressionStore(db),
        sqlite_stores.SqliteInboxStore(db),
        sqlite_stores.SqliteJourneyStateStore(db),
    )
    yield opened
    for store in (opened.outbox, opened.suppressions, opened.inbox, opened.runs):
        store.close()  # type: ignore[attr-defined]


@pytest.fixture
def recording_sender() -> RecordingSender:
    return RecordingSender()
