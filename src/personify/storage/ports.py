"""Role-specific storage ports. Each adapter implements them and passes the same contract suite
(``personify.testing.store_contracts``).

Every method takes the tenant explicitly: no call can read another tenant's data by accident.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from personify.domain.consents import ConsentRecord
from personify.domain.events import Event
from personify.domain.items import Item, ItemPatch
from personify.domain.keys import ApiKey, Scope
from personify.domain.users import User, UserPatch


@dataclass
class AppendResult:
    """What happened to a batch handed to :meth:`EventStore.append`.

    ``stored`` events are durable when ``append`` returns; ``duplicates`` were already stored
    (or repeated within the batch) and were acknowledged without storing them again.
    """

    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


class EventStore(Protocol):
    """Append-only event log, unique by (tenant, event_id)."""

    def append(self, tenant: str, events: Sequence[Event]) -> AppendResult: ...

    def get(self, tenant: str, event_id: str) -> Event | None: ...

    def for_user(
        self,
        tenant: str,
        user_id: str,
        *,
        limit: int = 100,
        before: datetime | None = None,
        types: Iterable[str] | None = None,
    ) -> list[Event]:
        """The user's events (and those of their linked anonymous ids), newest first."""
        ...

    def recent_for_users(
        self,
        tenant: str,
        user_ids: Iterable[str],
        *,
        types: Iterable[str] | None = None,
        since: datetime | None = None,
        limit_per_user: int = 100,
    ) -> dict[str, list[Event]]:
        """:meth:`for_user` for many people at once: every given id maps to its newest
        ``limit_per_user`` events (and those of its linked anonymous ids) with
        ``timestamp >= since``, newest first; ``[]`` for an id without events."""
        ...

    def for_anonymous(self, tenant: str, anonymous_id: str, *, limit: int = 100) -> list[Event]: ...

    def scan(
        self,
        tenant: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        types: Iterable[str] | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[Event]:
        """Every event of the tenant in timestamp order (for training and export)."""
        ...

    def count(self, tenant: str) -> int: ...

    def link_anonymous(self, tenant: str, anonymous_id: str, user_id: str) -> int:
        """Attribute past events of ``anonymous_id`` to ``user_id``; returns how many changed."""
        ...

    def delete_user(self, tenant: str, user_id: str, anonymous_ids: Sequence[str] = ()) -> int:
        """Erase every event of the user (and their anonymous ids); returns how many."""
        ...

    def delete_older_than(self, tenant: str, event_type: str, cutoff: datetime) -> int:
        """Retention: purge events of one type older than ``cutoff``; returns how many."""
        ...


class UserStore(Protocol):
    def upsert(self, tenant: str, users: Sequence[User]) -> list[User]: ...

    def patch(self, tenant: str, user_id: str, patch: UserPatch) -> User: ...

    def get(self, tenant: str, user_id: str) -> User | None: ...

    def get_by_anonymous(self, tenant: str, anonymous_id: str) -> User | None: ...

    def list(
        self, tenant: str, *, query: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[User]: ...

    def count(self, tenant: str) -> int: ...

    def delete(self, tenant: str, user_id: str) -> bool: ...


class CatalogStore(Protocol):
    def upsert(self, tenant: str, items: Sequence[Item]) -> list[Item]: ...

    def patch(self, tenant: str, item_id: str, patch: ItemPatch) -> Item: ...

    def get(self, tenant: str, item_id: str) -> Item | None: ...

    def get_many(self, tenant: str, item_ids: Sequence[str]) -> dict[str, Item]: ...

    def list(
        self,
        tenant: str,
        *,
        type: str | None = None,
        query: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Item]: ...

    def scan(self, tenant: str, *, batch_size: int = 5_000) -> Iterator[Item]: ...

    def count(self, tenant: str) -> int: ...

    def delete(self, tenant: str, item_id: str) -> bool: ...


class ConsentStore(Protocol):
    """Append-only consent log; the current state is the latest unexpired record per purpose."""

    def append(self, tenant: str, record: ConsentRecord) -> ConsentRecord: ...

    def history(self, tenant: str, user_id: str) -> list[ConsentRecord]: ...

    def current(
        self, tenant: str, user_id: str, *, now: datetime | None = None
    ) -> dict[str, ConsentRecord]: ...

    def delete_user(self, tenant: str, user_id: str) -> int: ...


class KeyStore(Protocol):
    def create(self, tenant: str, name: str, scopes: Iterable[Scope]) -> tuple[ApiKey, str]:
        """Create a key; returns its record and the secret, which is never stored or shown again."""
        ...

    def verify(self, secret: str) -> ApiKey | None:
        """The key for ``secret`` if it exists and is not revoked."""
        ...

    def list(self, tenant: str | None = None) -> list[ApiKey]: ...

    def revoke(self, key_id: str) -> bool: ...


@dataclass(frozen=True)
class Tombstone:
    """The non-identifying trace of an erasure: a keyed hash of the user id, never the id."""

    user_id_hash: str
    erased_at: datetime
    receipt_id: str


class ErasureStore(Protocol):
    """Tombstones of erased users, so replayed or late data cannot re-create them.

    The user id is stored only as a keyed SHA-256 (HMAC) per tenant: the table alone does not
    reveal who was erased, yet ``is_erased`` answers for a known id.
    """

    def user_id_hash(self, tenant: str, user_id: str) -> str: ...

    def record(
        self, tenant: str, user_id_hash: str, erased_at: datetime, receipt_id: str
    ) -> Tombstone: ...

    def is_erased(self, tenant: str, user_id: str) -> bool: ...

    def erased_among(self, tenant: str, user_ids: Iterable[str]) -> set[str]:
        """The ids among ``user_ids`` that were erased, in one round trip (ingestion hot path)."""
        ...

    def find(self, tenant: str, user_id: str) -> Tombstone | None: ...

    def erased_since(self, tenant: str, since: datetime) -> list[Tombstone]:
        """Tombstones recorded at or after ``since``, oldest first (what a model version built
        at ``since`` may still hold)."""
        ...
