"""Where imported batches go: events through the ingestion service (validation, idempotent
append), users and items validated one by one and upserted. Each sink turns the per-record
rejections of a batch back into row errors."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel

from personify.domain.events import EventTypes
from personify.domain.items import Item
from personify.domain.users import User
from personify.ingestion import EventIngestor, Rejection, validate_each
from personify.jobs.import_report import RowError
from personify.networking.items import problems as item_problems
from personify.storage.ports import CatalogStore, EventStore, UserStore
from personify.storage.sql.event_types import SqlEventTypes


class ImportStores(Protocol):
    """The stores an import writes to (``personify.storage.registry.Stores`` has them)."""

    @property
    def events(self) -> EventStore: ...

    @property
    def users(self) -> UserStore: ...

    @property
    def catalog(self) -> CatalogStore: ...


class ImportErasureCheck:
    """``(tenant, user_id) -> bool`` for one import job: asks the erasure log once per user and
    remembers the answer for ``ttl`` seconds (an erased user stays erased for good), so a file
    with 500k rows of 4k users costs 4k look-ups, not 500k."""

    def __init__(
        self,
        is_erased: Callable[[str, str], bool],
        *,
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._is_erased, self.ttl, self._clock = is_erased, ttl, clock
        self._answers: dict[tuple[str, str], tuple[bool, float]] = {}

    def __call__(self, tenant: str, user_id: str) -> bool:
        key = (tenant, user_id)
        now = self._clock()
        hit = self._answers.get(key)
        if hit is not None and (hit[0] or hit[1] > now):
            return hit[0]
        erased = self._is_erased(tenant, user_id)
        self._answers[key] = (erased, now + self.ttl)
        return erased


def default_ingestor(stores: Any, custom_event_types: Iterable[str] = ()) -> EventIngestor:
    """The ingestion service over ``stores.events`` for an import job, refusing erased users
    when the stores have an erasure log (see :class:`ImportErasureCheck`)."""
    erasures = getattr(stores, "erasures", None)
    is_erased: Callable[[str, str], bool] | None = (
        ImportErasureCheck(erasures.is_erased) if erasures is not None else None
    )
    database = getattr(stores, "database", None)
    declared = SqlEventTypes(database).declared if database is not None else None
    return EventIngestor(
        stores.events, event_types=EventTypes(custom_event_types, declared=declared),
        is_erased=is_erased,
    )


@dataclass
class BatchOutcome:
    """What one batch did: counts and the row errors to log."""

    stored: int
    duplicates: int
    errors: list[RowError]


def _row_error(rejection: Rejection, rows: Sequence[int]) -> RowError:
    return RowError(
        row=rows[rejection.index],
        field=rejection.field,
        code=rejection.code,
        reason=rejection.message,
        accepted=rejection.accepted,
        id=rejection.id,
    )


class Sink(Protocol):
    def write(self, raws: Sequence[Any], rows: Sequence[int]) -> BatchOutcome:
        """Store a batch of raw records; ``rows[i]`` is the source row of ``raws[i]``."""
        ...


class EventSink:
    """Events through :class:`EventIngestor`: a duplicate id is acknowledged, never stored twice."""

    def __init__(self, ingestor: EventIngestor, tenant: str) -> None:
        self.ingestor, self.tenant = ingestor, tenant

    def write(self, raws: Sequence[Any], rows: Sequence[int]) -> BatchOutcome:
        result = self.ingestor.ingest(self.tenant, raws)
        errors = [_row_error(r, rows) for r in result.rejected]
        return BatchOutcome(len(result.stored), len(result.duplicates), errors)


class RecordSink:
    """Users or items: validated one by one, then upserted (so a re-run overwrites, never
    duplicates). A repeated id inside one batch keeps its last row."""

    def __init__(
        self,
        model: type[BaseModel],
        upsert: Callable[[str, Sequence[Any]], object],
        id_field: str,
        tenant: str,
        check: Callable[[Any], list[tuple[str, str, str]]] | None = None,
    ) -> None:
        self.model, self.upsert, self.id_field, self.tenant = model, upsert, id_field, tenant
        self.check = check
        """Further checks of a valid record: ``(field, message, accepted)`` problems."""

    def write(self, raws: Sequence[Any], rows: Sequence[int]) -> BatchOutcome:
        valid, rejected = validate_each(self.model, raws, id_field=self.id_field, max_bytes=None)
        latest: dict[str, BaseModel] = {}
        kept = []
        for index, record in valid:
            found = self.check(record) if self.check is not None else []
            if found:
                field, message, accepted = found[0]
                rejected.append(Rejection(index, "invalid_input", field, message, accepted,
                                          getattr(record, self.id_field)))
            else:
                kept.append((index, record))
        rejected.sort(key=lambda r: r.index)
        valid = kept
        for _, record in valid:
            latest[getattr(record, self.id_field)] = record
        if latest:
            self.upsert(self.tenant, list(latest.values()))
        errors = [_row_error(r, rows) for r in rejected]
        return BatchOutcome(len(latest), len(valid) - len(latest), errors)


def sink_for(kind: str, stores: ImportStores, ingestor: EventIngestor, tenant: str) -> Sink:
    """The sink that stores records of ``kind``."""
    if kind == "events":
        return EventSink(ingestor, tenant)
    if kind == "users":
        return RecordSink(User, stores.users.upsert, "user_id", tenant)
    return RecordSink(Item, stores.catalog.upsert, "item_id", tenant,
                      check=lambda item: item_problems(item, datetime.now(UTC)))
