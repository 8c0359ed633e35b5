"""The decision log written behind the request path.

A page of rows logs one bandit decision per request (``page:<name>``). Inserting it during the
request costs a database transaction (an fsync on SQLite) on every page; instead the request
hands the record to :class:`QueuedDecisionLog`, a bounded in-process queue that a background
thread writes in batches (one transaction per batch, ``flush_interval_s`` apart).

What this promises:

* **Nothing acknowledged is lost on a clean shutdown**: :meth:`QueuedDecisionLog.close` (called
  by ``Runtime.close``, i.e. the API's lifespan on SIGINT / SIGTERM and every CLI command's
  exit) stops the thread and writes everything still queued before the stores close.
* **Bounded memory, no silent drop**: when ``max_queue`` records wait, the request writes its
  own record synchronously (back-pressure) instead of dropping it.
* **Reads see queued records**: :meth:`get` answers from the queue first (reward attribution in
  this process, tests); :meth:`scan` writes the queue out before reading.
* **On a crash** (the process killed with SIGKILL, out of memory, power loss) the records queued
  since the last batch are lost: at most ``flush_interval_s`` (50 ms) of page decisions, never
  more than ``max_queue``. Their pages were served; what is lost is their log line, so those
  pages' later row clicks earn no reward and off-policy evaluation does not see them. Nothing
  else depends on them (the served rows' impressions go through the impression logger).
* **Other processes** read a decision from the database, so a reward for a queued decision
  ingested by *another* worker within those 50 ms is not attributed there. Only pages use the
  queue (a person clicks a row long after that); ``POST /v1/decisions`` keeps writing
  synchronously, since its caller may send the reward to any worker at once.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from personify.experiments.bandits import DecisionLog
from personify.storage.sql.experiments import SqlDecisionLogStore

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.05
MAX_BATCH = 500
MAX_QUEUE = 10_000


class QueuedDecisionLog:
    """``DecisionLogStore`` over a SQL store, with :meth:`record_later` written behind."""

    def __init__(
        self,
        store: SqlDecisionLogStore[DecisionLog],
        *,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        max_batch: int = MAX_BATCH,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        self.store = store
        self.flush_interval_s = flush_interval_s
        self.max_batch = max_batch
        self.max_queue = max_queue
        self._pending: OrderedDict[tuple[str, str], DecisionLog] = OrderedDict()
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        """Held while a batch is taken and written, so :meth:`flush` waits for one in flight."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.synchronous = 0
        """Records written on the request path because the queue was full (or closed)."""
        self.failed = 0

    # -- writing -----------------------------------------------------------------------------

    def record(self, tenant: str, decision: DecisionLog) -> None:
        """Write now (the decision API: its caller may reward it through another process)."""
        self.store.record(tenant, decision)

    def record_later(self, tenant: str, decision: DecisionLog) -> None:
        """Queue the record for the background writer; written now when the queue is full or
        the log is closed."""
        with self._lock:
            if not self._stop.is_set() and len(self._pending) < self.max_queue:
                self._pending[(tenant, decision.decision_id)] = decision
                self._ensure_thread()
                return
        self.synchronous += 1
        self.store.record(tenant, decision)

    def _ensure_thread(self) -> None:
        """Start the writer on first use (building a runtime starts no thread; call locked)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="personify-decision-log", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self._drain()

    def _drain(self) -> int:
        """Write everything queued, in batches; returns the records written."""
        done = 0
        with self._writing:
            while True:
                with self._lock:
                    batch = [
                        (key[0], record)
                        for key, record in list(self._pending.items())[: self.max_batch]
                    ]
                if not batch:
                    return done
                try:
                    self.store.record_many(batch)
                except Exception:
                    # kept queued: the next round retries (a database outage must not lose
                    # the decisions); close() gives up after one last attempt
                    self.failed += 1
                    log.exception("could not write %d decisions (kept queued)", len(batch))
                    return done
                with self._lock:
                    for tenant, record in batch:
                        key = (tenant, record.decision_id)
                        if self._pending.get(key) is record:
                            del self._pending[key]
                done += len(batch)
                self.written += len(batch)

    def flush(self) -> int:
        """Write everything queued so far (including a batch being written right now)."""
        return self._drain()

    def close(self) -> None:
        """Stop the writer and write what is queued (a clean shutdown loses nothing)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        self._drain()
        with self._lock:
            left = len(self._pending)
        if left:
            log.error("%d decisions could not be written at shutdown", left)

    @property
    def queued(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- reading -----------------------------------------------------------------------------

    def get(self, tenant: str, decision_id: str) -> DecisionLog | None:
        with self._lock:
            found = self._pending.get((tenant, decision_id))
        return found if found is not None else self.store.get(tenant, decision_id)

    def scan(
        self, tenant: str, *, policy: str | None = None, **kwargs: Any
    ) -> Iterable[DecisionLog]:
        self.flush()
        return self.store.scan(tenant, policy=policy, **kwargs)

    def record_many(self, decisions: Sequence[tuple[str, DecisionLog]]) -> None:
        self.store.record_many(decisions)
