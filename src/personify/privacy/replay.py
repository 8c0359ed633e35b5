"""Replaying stored events into an in-process online state without racing erasures.

A replay (the engine's start-up warm-up) reads a batch of stored events, then applies it. An
erasure in between deletes the person's events and forgets them in the online state; applying
the already-read batch afterwards would bring them back. :class:`ReplayFence` makes that
impossible: the erasure forgets a subject *through the fence* (recording it while a replay is
active), and the replay applies each batch *through the fence*, dropping the events of every
subject forgotten since the replay started. Both happen under one lock, so either the batch is
applied first and the erasure's forget removes it, or the erasure comes first and the batch is
applied without the person; an erasure arriving during an apply waits for that batch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from personify.domain.events import Event
from personify.storage.online.port import OnlineState

ANON = "anon:"


class ReplayFence:
    """Orders replays of stored events against erasures of one process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replays = 0
        self._forgotten: dict[str, set[str]] = {}

    @contextmanager
    def replaying(self) -> Iterator[Replay]:
        """A replay session: subjects forgotten from now on never reach its batches."""
        with self._lock:
            self._replays += 1
        try:
            yield Replay(self)
        finally:
            with self._lock:
                self._replays -= 1
                if self._replays == 0:
                    self._forgotten.clear()

    def forget(self, state: OnlineState, tenant: str, subject: str) -> None:
        """Erasure: forget ``subject`` in ``state`` (after their events were deleted)."""
        with self._lock:
            if self._replays:
                self._forgotten.setdefault(tenant, set()).add(subject)
            state.forget_user(tenant, subject)

    def _apply(self, state: OnlineState, tenant: str, events: Sequence[Event]) -> list[Event]:
        with self._lock:
            gone = self._forgotten.get(tenant, set())
            kept = [e for e in events if not (gone and _touches(e, gone))]
            if kept:
                state.apply(tenant, kept)
            return kept


class Replay:
    """One replay session of a :class:`ReplayFence`."""

    def __init__(self, fence: ReplayFence) -> None:
        self._fence = fence

    def apply(self, state: OnlineState, tenant: str, events: Sequence[Event]) -> list[Event]:
        """Apply ``events`` except those of subjects erased since the session began; returns
        the events applied."""
        return self._fence._apply(state, tenant, events)


def _touches(event: Event, subjects: set[str]) -> bool:
    if event.user_id is not None and event.user_id in subjects:
        return True
    return event.anonymous_id is not None and f"{ANON}{event.anonymous_id}" in subjects
