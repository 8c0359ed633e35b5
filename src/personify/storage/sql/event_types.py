"""A tenant's own event types (name, meaning, training weight), kept as documents of kind
``event_type`` in the definitions table, so they are declared through the API or the CLI
without a restart and every process sharing the database sees them.

Reads are cached per tenant for ``ttl`` seconds (ingestion checks every event's type); a write
through this object is visible to it at once, a write through another process within ``ttl``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from pydantic import ValidationError

from personify.domain.errors import LimitExceeded, NotFound
from personify.domain.events import (
    MAX_DECLARED_EVENT_TYPES,
    EventTypeDefinition,
    check_custom_type_name,
)
from personify.storage.sql.database import Database
from personify.storage.sql.messaging_definitions import SqlMessagingDefinitions

KIND = "event_type"
"""The definitions table's kind of declared event types."""


class SqlEventTypes:
    """Declare, list and remove a tenant's event types; ``declared(tenant)`` is the cached
    read the ingestion check uses."""

    def __init__(
        self,
        db: Database | SqlMessagingDefinitions,
        *,
        ttl: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.definitions = (
            db if isinstance(db, SqlMessagingDefinitions) else SqlMessagingDefinitions(db)
        )
        self.ttl = ttl
        self.monotonic = monotonic
        self._cache: dict[str, tuple[float, Mapping[str, EventTypeDefinition]]] = {}
        self._lock = threading.Lock()

    def declared(self, tenant: str) -> Mapping[str, EventTypeDefinition]:
        """The tenant's declared types by name (read at most once per ``ttl``)."""
        now = self.monotonic()
        with self._lock:
            hit = self._cache.get(tenant)
        if hit is not None and hit[0] > now:
            return hit[1]
        types = MappingProxyType(self._read(tenant))
        with self._lock:
            self._cache[tenant] = (now + self.ttl, types)
        return types

    def _read(self, tenant: str) -> dict[str, EventTypeDefinition]:
        out: dict[str, EventTypeDefinition] = {}
        for stored in self.definitions.list(tenant, KIND):
            try:
                out[stored.name] = EventTypeDefinition.model_validate(stored.body)
            except ValidationError:  # written by a newer version: keep accepting the type
                out[stored.name] = EventTypeDefinition()
        return out

    def get(self, tenant: str, name: str) -> EventTypeDefinition:
        definition = self._read(tenant).get(name)
        if definition is None:
            raise NotFound(f"no declared event type {name!r}", field="name")
        return definition

    def put(self, tenant: str, name: str, definition: EventTypeDefinition) -> bool:
        """Declare or redefine ``name``; True when it is new. Events already stored keep
        their type; the new weight applies from the next training."""
        check_custom_type_name(name)
        existing = self._read(tenant)
        if name not in existing and len(existing) >= MAX_DECLARED_EVENT_TYPES:
            raise LimitExceeded(
                f"a tenant may declare at most {MAX_DECLARED_EVENT_TYPES} event types",
                field="name", accepted="an already declared name, or delete one first",
            )
        self.definitions.put(tenant, KIND, name, definition.model_dump(mode="json"),
                             enabled=True)
        self._forget(tenant)
        return name not in existing

    def delete(self, tenant: str, name: str) -> None:
        """Stop accepting new events of ``name`` (stored ones are kept)."""
        if not self.definitions.delete(tenant, KIND, name):
            raise NotFound(f"no declared event type {name!r}", field="name")
        self._forget(tenant)

    def weights(self, tenant: str) -> dict[str, float]:
        """The training weight of every declared type that has one."""
        return {name: d.weight for name, d in self._read(tenant).items() if d.weight is not None}

    def _forget(self, tenant: str) -> None:
        with self._lock:
            self._cache.pop(tenant, None)
