"""The embedded-mode retraining scheduler: every ``interval`` or after ``every_events`` new
events, run training *outside* the serving threads (a child process by default), so the server
only ever swaps in finished versions."""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from personify.domain.events import Event
from personify.serving.periodic import Periodic

log = logging.getLogger(__name__)


def train_in_subprocess(tenant: str, extra_args: Sequence[str] = ()) -> int:
    """Run ``personify train --tenant T`` in a child process, then refit the tenant's insights
    (``personify insights fit``, with the churn / propensity models and the clusters when the
    ``train`` extra is installed); returns the training's exit code (a failed insights fit is
    logged)."""
    command = [sys.executable, "-m", "personify.cli.main", "train", "--tenant", tenant, *extra_args]
    code = subprocess.run(command, check=False, capture_output=True, timeout=3600).returncode
    insights = [sys.executable, "-m", "personify.cli.main", "insights", "fit", "--tenant", tenant]
    if importlib.util.find_spec("lightgbm") and importlib.util.find_spec("sklearn"):
        insights += ["--predictions", "--clusters"]
    done = subprocess.run(insights, check=False, capture_output=True, timeout=3600)
    if done.returncode != 0:
        log.warning("insights fit for %s failed: %s", tenant, done.stderr[-2000:])
    return code


class RetrainScheduler:
    """Counts ingested events per tenant (register ``on_events`` as an ingestion listener) and
    triggers ``run(tenant)`` when enough time or events have passed. One run at a time in this
    process; with ``lock`` (``tenant -> context yielding whether it is held``, a
    :class:`~personify.jobs.retrain_lock.RetrainLock`'s ``attempt``) one at a time across
    processes: a due retrain another process is running is skipped here (``skipped``)."""

    def __init__(
        self,
        run: Callable[[str], int],
        *,
        interval_s: float = 600.0,
        every_events: int = 10_000,
        tenants: Sequence[str] = ("default",),
        poll_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        lock: Callable[[str], AbstractContextManager[bool]] | None = None,
        on_skipped: Callable[[str], None] | None = None,
    ) -> None:
        self.run = run
        self.lock = lock
        self.on_skipped = on_skipped
        self.skipped: list[str] = []
        """Tenants whose due retrain another process held the lock for."""
        self.interval_s = interval_s
        self.every_events = every_events
        self.poll_s = poll_s
        self.clock = clock
        self._pending: dict[str, int] = dict.fromkeys(tenants, 0)
        self._last: dict[str, float] = dict.fromkeys(tenants, clock())
        self._poller: Periodic | None = None
        self._running = threading.Lock()
        self.runs: list[tuple[str, int]] = []

    def on_events(self, tenant: str, events: Sequence[Event]) -> None:
        real = sum(1 for e in events if e.type != "impression")
        if real:
            self._pending[tenant] = self._pending.get(tenant, 0) + real
            self._last.setdefault(tenant, self.clock())

    def add_pending(self, tenant: str, count: int) -> None:
        """Count ``count`` new events of ``tenant`` seen another way than ``on_events`` (a
        ``personify worker retrain`` polls the event store's count)."""
        if count > 0:
            self._pending[tenant] = self._pending.get(tenant, 0) + count
            self._last.setdefault(tenant, self.clock())

    def request(self, tenant: str) -> None:
        """Ask for a retrain of ``tenant`` at the next tick (e.g. after an erasure whose model
        influence could not be subtracted exactly)."""
        self._pending[tenant] = max(self._pending.get(tenant, 0), self.every_events)
        self._last.setdefault(tenant, self.clock())

    def due(self) -> list[str]:
        now = self.clock()
        return [
            t
            for t, pending in self._pending.items()
            if pending >= self.every_events
            or (pending > 0 and now - self._last[t] >= self.interval_s)
        ]

    def tick(self) -> list[str]:
        """Run training for every due tenant; returns those trained."""
        if not self._running.acquire(blocking=False):
            return []
        try:
            done = []
            for tenant in self.due():
                self._pending[tenant] = 0
                self._last[tenant] = self.clock()
                code = self._run_locked(tenant)
                if code is None:
                    continue
                self.runs.append((tenant, code))
                if code != 0:
                    log.warning("background training for %s exited with %s", tenant, code)
                done.append(tenant)
            return done
        finally:
            self._running.release()

    def _run_locked(self, tenant: str) -> int | None:
        """``run(tenant)`` under the cross-process lock; None when another process holds it
        (that process is training these events)."""
        if self.lock is None:
            return self.run(tenant)
        with self.lock(tenant) as held:
            if not held:
                log.info("retrain of %s skipped: another process is training it", tenant)
                self.skipped.append(tenant)
                if self.on_skipped is not None:
                    self.on_skipped(tenant)
                return None
            return self.run(tenant)

    def start(self) -> None:
        if self._poller is None:
            self._poller = Periodic(self.tick, self.poll_s, "personify-retrain")
            self._poller.start()

    def stop(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
