"""The *recommendation update latency* KPI: how long after an event was acknowledged for a
visitor the first recommendation reflecting it was served to them.

Measured in the running engine, without any extra database query:

* when ingestion has stored a batch and applied it to the online state (the moment the API
  acknowledges it), :meth:`UpdateLatencyTracker.acknowledged` notes, per subject (user id or
  ``anon:<id>``), the time of their latest event that changes what is served (an event with an
  item that is not an impression: what the online state folds in);
* when the next *personalized* recommendation for that subject is logged as an impression (it
  read the subject's live state, which by then holds the event),
  :meth:`UpdateLatencyTracker.on_impression` stamps the impression with
  ``properties["update_latency_ms"]`` = served time - acknowledgement time (and
  ``update_event_id``), and forgets the subject until their next event.

The sample then travels with the impression through the existing impression logger (batched
off the request path) into the event store, so ``/v1/kpis`` and ``personify kpis`` aggregate it
per day, channel, variant or source like any other KPI, over every worker process.

Pending acknowledgements older than ``max_age`` (default 30 minutes, the session gap) are
dropped: a recommendation served after the visitor left and came back measures their absence,
not the engine. At most ``max_pending`` subjects are remembered (oldest dropped first). A
subject whose event was ingested by one worker and whose next recommendation is served by
another is not sampled (each process sees its own acknowledgements).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from personify.domain.events import Event, EventType

LATENCY_PROPERTY = "update_latency_ms"
EVENT_PROPERTY = "update_event_id"
DEFAULT_MAX_AGE = timedelta(minutes=30)
DEFAULT_MAX_PENDING = 200_000


class UpdateLatencyTracker:
    """Per-process pending acknowledgements and the impression stamp; thread-safe."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_age: timedelta = DEFAULT_MAX_AGE,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.clock = clock
        self.max_age = max_age
        self.max_pending = max_pending
        self._pending: OrderedDict[tuple[str, str], tuple[datetime, str]] = OrderedDict()
        self._lock = threading.Lock()
        self.samples = 0
        """Impressions stamped with a latency so far (diagnostics)."""
        self.expired = 0
        """Acknowledgements dropped unserved: older than ``max_age`` or over ``max_pending``."""

    def acknowledged(self, tenant: str, events: Sequence[Event]) -> None:
        """Ingestion listener (after the online state applied ``events``): remember the
        acknowledgement time of each subject's latest state-changing event."""
        at = self.clock()
        latest: dict[str, str] = {}
        for e in events:
            if e.item_id is not None and e.type != EventType.IMPRESSION:
                latest[e.subject] = e.event_id
        if not latest:
            return
        with self._lock:
            for subject, event_id in latest.items():
                key = (tenant, subject)
                self._pending.pop(key, None)
                self._pending[key] = (at, event_id)
            while len(self._pending) > self.max_pending:
                self._pending.popitem(last=False)
                self.expired += 1

    def on_impression(self, tenant: str, event: Event) -> Event:
        """The impression, stamped with the latency when it is the subject's first personalized
        recommendation since their latest acknowledged event."""
        if event.properties.get("personalized") is not True:
            return event
        key = (tenant, event.subject)
        with self._lock:
            pending = self._pending.pop(key, None)
        if pending is None:
            return event
        served_at = self.clock()
        acked_at, event_id = pending
        waited = served_at - acked_at
        if waited > self.max_age or waited < timedelta(0):
            with self._lock:
                self.expired += 1
            return event
        self.samples += 1
        properties = {
            **event.properties,
            LATENCY_PROPERTY: round(waited.total_seconds() * 1000.0, 3),
            EVENT_PROPERTY: event_id,
        }
        return event.model_copy(update={"properties": properties})

    def wrap(self, log_impression: Callable[[str, Event], None]) -> Callable[[str, Event], None]:
        """An impression logger that stamps before handing over to ``log_impression``."""

        def log(tenant: str, event: Event) -> None:
            log_impression(tenant, self.on_impression(tenant, event))

        return log

    def forget(self, tenant: str, subjects: Sequence[str]) -> int:
        """Erasure hook: drop the subjects' pending acknowledgements."""
        with self._lock:
            return sum(self._pending.pop((tenant, s), None) is not None for s in subjects)

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)
