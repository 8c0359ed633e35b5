"""A daemon thread that calls one function every N seconds until stopped; failures are logged
and the loop goes on (model refresh, retraining ticks)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """``Periodic(fn, every_s, name).start()`` ... ``.stop()``."""

    def __init__(self, fn: Callable[[], object], every_s: float, name: str) -> None:
        self.fn = fn
        self.every_s = every_s
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.every_s):
                try:
                    self.fn()
                except Exception:
                    log.exception("%s failed", self.name)

        self._thread = threading.Thread(target=loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
