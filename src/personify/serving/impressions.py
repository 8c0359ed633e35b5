"""Impression logging off the request path: responses enqueue their impression event and a
background thread appends them in batches through the ingestion service."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence

from personify.domain.events import Event

log = logging.getLogger(__name__)


class ImpressionLogger:
    """Batches ``(tenant, event)`` pairs and hands them to ``sink(tenant, events)``."""

    def __init__(
        self,
        sink: Callable[[str, Sequence[Event]], object],
        *,
        flush_interval_s: float = 0.05,
        max_batch: int = 1000,
        max_queue: int = 100_000,
    ) -> None:
        self.sink = sink
        self.flush_interval_s = flush_interval_s
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[str, Event]] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._draining = threading.Lock()
        """Held while a batch is taken and stored, so ``flush`` also waits for one in flight."""
        self._thread = threading.Thread(target=self._run, name="personify-impressions", daemon=True)
        self._thread.start()
        self.dropped = 0

    def __call__(self, tenant: str, event: Event) -> None:
        try:
            self._queue.put_nowait((tenant, event))
        except queue.Full:
            self.dropped += 1

    def _drain(self) -> None:
        with self._draining:
            self._drain_locked()

    def _drain_locked(self) -> None:
        batch: dict[str, list[Event]] = {}
        taken = 0
        while taken < self.max_batch:
            try:
                tenant, event = self._queue.get_nowait()
            except queue.Empty:
                break
            batch.setdefault(tenant, []).append(event)
            taken += 1
        for tenant, events in batch.items():
            try:
                self.sink(tenant, events)
            except Exception:
                log.exception("could not store %d impressions", len(events))

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            while not self._queue.empty():
                self._drain()
        while not self._queue.empty():
            self._drain()

    def flush(self) -> None:
        """Store everything queued so far, including a batch the background thread is storing
        right now (tests, shutdown)."""
        self._drain()
        while not self._queue.empty():
            self._drain()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
