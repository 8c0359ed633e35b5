"""The event ingestion service used by the HTTP API, the Segment-compatible endpoint and bulk
import: validate, drop erased subjects, append durably, then notify listeners (online state)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from personify.domain.events import Event, EventTypes
from personify.ingestion.validation import BatchResult, Rejection, validate_each
from personify.storage.ports import EventStore

log = logging.getLogger(__name__)


class EventListener(Protocol):
    """Called with the events a batch newly stored (never duplicates), after they are durable."""

    def __call__(self, tenant: str, events: Sequence[Event]) -> None: ...


OutcomeObserver = Callable[[Sequence[str], int, Sequence[str]], None]
"""``(types of the events stored, duplicates, rejection codes)`` of one batch (metrics)."""


class EventIngestor:
    """Validates each event on its own, stores the valid ones in one durable append, and reports
    every rejected one with its index. Duplicate event ids are acknowledged, not stored twice.

    Listeners (e.g. the online state) run after the append; a failing listener is logged and
    never loses the acknowledged write.
    """

    def __init__(
        self,
        events: EventStore,
        *,
        event_types: EventTypes | None = None,
        is_erased: Callable[[str, str], bool] | None = None,
        listeners: Sequence[EventListener] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.events = events
        self.event_types = event_types or EventTypes()
        self.is_erased = is_erased
        self.listeners = list(listeners)
        self.clock = clock
        self.outcome_observers: list[OutcomeObserver] = []
        """Told the outcome of every batch (stored types, duplicates, rejection codes)."""

    def add_listener(self, listener: EventListener) -> None:
        self.listeners.append(listener)

    def ingest(self, tenant: str, raws: Sequence[Any], *, start_index: int = 0) -> BatchResult:
        """Ingest a batch of raw mappings (or ready Events)."""
        now = self.clock()
        valid, rejected = validate_each(Event, raws, id_field="event_id", start_index=start_index)
        self._prefetch_erasures(tenant, [event for _, event in valid])
        accepted: list[Event] = []
        for index, event in valid:
            problems = self.event_types.check(event, now=now, tenant=tenant)
            if problems:
                field, message, accepted_values = problems[0]
                rejected.append(
                    Rejection(
                        index, "invalid_input", field, message, accepted_values, event.event_id
                    )
                )
                continue
            erased_field = self._erased_field(tenant, event)
            if erased_field is not None:
                rejected.append(
                    Rejection(
                        index,
                        "erased",
                        erased_field,
                        "this person was erased; events for them are not accepted again",
                        "events of people who have not been erased",
                        event.event_id,
                    )
                )
                continue
            if event.received_at is None:
                event = event.model_copy(update={"received_at": now})
            accepted.append(event)
        result = BatchResult(rejected=sorted(rejected, key=lambda r: r.index))
        if accepted:
            appended = self.events.append(tenant, accepted)
            result.stored = appended.stored
            result.duplicates = appended.duplicates
            if appended.stored and self.listeners:
                stored_ids = set(appended.stored)
                fresh = [e for e in accepted if e.event_id in stored_ids]
                self.notify(tenant, fresh)
        if self.outcome_observers:
            self._observe(accepted, result)
        return result

    def _observe(self, accepted: Sequence[Event], result: BatchResult) -> None:
        stored = set(result.stored)
        types = [e.type for e in accepted if e.event_id in stored]
        codes = [r.code for r in result.rejected]
        for observer in self.outcome_observers:
            try:
                observer(types, len(result.duplicates), codes)
            except Exception:  # observing never fails an acknowledged write
                log.exception("ingestion outcome observer %r failed", observer)

    def _prefetch_erasures(self, tenant: str, events: Sequence[Event]) -> None:
        """Let an erasure check that can answer a whole batch at once (``prefetch``, as the
        API's cached check does) read every identity of the batch in one query, so the
        per-event checks that follow are cache hits."""
        prefetch = getattr(self.is_erased, "prefetch", None)
        if prefetch is None or not events:
            return
        prefetch(tenant, [e.user_id for e in events if e.user_id]
                 + [f"anon:{e.anonymous_id}" for e in events if e.anonymous_id])

    def _erased_field(self, tenant: str, event: Event) -> str | None:
        """``user_id`` / ``anonymous_id`` when that identity was erased (tombstones are kept for
        users and for anonymous visitors as ``anon:<id>``), else None."""
        if self.is_erased is None:
            return None
        if event.user_id is not None and self.is_erased(tenant, event.user_id):
            return "user_id"
        if event.anonymous_id is not None and self.is_erased(tenant, f"anon:{event.anonymous_id}"):
            return "anonymous_id"
        return None

    def notify(self, tenant: str, events: Sequence[Event]) -> None:
        for listener in self.listeners:
            try:
                listener(tenant, events)
            except Exception:  # a listener never loses an acknowledged write
                log.exception("event listener %r failed; events are stored", listener)
