"""Anti-repetition: what the chain showed each person, so that items shown again and again
without a click sink in that person's next answers for a while (``RecommendationRequest.
repetition``: a factor per unclicked impression within a window of hours).

Held in process (:class:`ShownItems`) from the chain's own logged answers: bounded (people,
items per person), expiring after ``horizon``, and forgotten on erasure (an engine forgetter).
With a shared online state (Redis) it is :class:`SharedShownItems`: every worker records and
reads the same per-person list, so a person served by one worker is not shown the same thing
by the next; while the store is unreachable, each worker falls back to its own memory.
A click, a view or any other interaction with an item after it was shown clears its count.
At an identity merge (an anonymous visitor logs in) what the visitor was shown becomes the
person's: :meth:`ShownItems.merge` here, ``merge_users`` for the shared list.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from personify.domain.errors import Unavailable
from personify.storage.online.port import Interaction

log = logging.getLogger(__name__)


class ShownLog(Protocol):
    """What the chain needs of an anti-repetition memory."""

    def record(self, tenant: str, subject: str, item_ids: Sequence[str],
               when: datetime) -> None: ...

    def unclicked(self, tenant: str, subject: str, since: datetime,
                  interactions: Sequence[Interaction]) -> dict[str, int]: ...

    def forget(self, tenant: str, subjects: Sequence[str]) -> int: ...

    def merge(self, tenant: str, source: str, target: str) -> None: ...


class ShownStore(Protocol):
    """A shared store of shown answers (the Redis online state)."""

    def record_shown(self, tenant: str, user: str, item_ids: Sequence[str], when: datetime, *,
                     keep: int, ttl: timedelta) -> None: ...

    def shown_answers(self, tenant: str, user: str) -> list[tuple[float, list[str]]]: ...

    def forget_shown(self, tenant: str, user: str) -> bool: ...


def _counts(times_by_item: dict[str, list[datetime]], since: datetime,
            interactions: Sequence[Interaction]) -> dict[str, int]:
    last: dict[str, datetime] = {}
    for inter in interactions:
        if inter.item_id in times_by_item and inter.timestamp > last.get(inter.item_id, since):
            last[inter.item_id] = inter.timestamp
    out = {}
    for item_id, times in times_by_item.items():
        after = last.get(item_id, since)
        count = sum(t > after for t in times)
        if count:
            out[item_id] = count
    return out


class ShownItems:
    """Per (tenant, person): item -> the times it was shown (newest last, at most
    ``per_item``), for the ``max_people`` most recently served people."""

    def __init__(self, *, max_people: int = 100_000, per_person: int = 300,
                 per_item: int = 8, horizon: timedelta = timedelta(days=7)) -> None:
        self.max_people = max_people
        self.per_person = per_person
        self.per_item = per_item
        self.horizon = horizon
        self._people: OrderedDict[tuple[str, str], dict[str, list[datetime]]] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, tenant: str, subject: str, item_ids: Sequence[str], when: datetime) -> None:
        key = (tenant, subject)
        with self._lock:
            shown = self._people.pop(key, None) or {}
            cutoff = when - self.horizon
            if shown and next(iter(shown.values()))[-1] < cutoff:  # oldest first: drop stale
                shown = {i: t for i, t in shown.items() if t[-1] >= cutoff}
            for item_id in item_ids:
                times = shown.pop(item_id, [])  # re-inserted: the dict stays oldest first
                times.append(when)
                shown[item_id] = times[-self.per_item:]
            while len(shown) > self.per_person:
                shown.pop(next(iter(shown)))
            self._people[key] = shown
            while len(self._people) > self.max_people:
                self._people.popitem(last=False)

    def unclicked(self, tenant: str, subject: str, since: datetime,
                  interactions: Sequence[Interaction]) -> dict[str, int]:
        """Item -> how often it was shown after ``since`` and after the person's last
        interaction with it."""
        with self._lock:
            shown = self._people.get((tenant, subject))
            if not shown:
                return {}
            snapshot = {i: list(t) for i, t in shown.items()}
        return _counts(snapshot, since, interactions)

    def forget(self, tenant: str, subjects: Sequence[str]) -> int:
        """Erasure: drop what was shown to these people."""
        with self._lock:
            return sum(self._people.pop((tenant, s), None) is not None for s in subjects)

    def merge(self, tenant: str, source: str, target: str) -> None:
        """Identity merge: what was shown to ``source`` (an anonymous visitor, ``anon:<id>``)
        now counts as shown to ``target`` (the person who logged in); ``source`` is dropped."""
        if source == target:
            return
        with self._lock:
            moved = self._people.pop((tenant, source), None)
            if not moved:
                return
            shown = self._people.pop((tenant, target), None) or {}
            for item_id, times in moved.items():
                shown[item_id] = sorted([*shown.get(item_id, []), *times])[-self.per_item:]
            ordered = sorted(shown.items(), key=lambda kv: kv[1][-1])  # oldest first
            self._people[(tenant, target)] = dict(ordered[-self.per_person:])


class SharedShownItems:
    """Anti-repetition kept in a shared store (every worker of a deployment reads and writes
    the same per-person answers); each worker's own :class:`ShownItems` serves while the store
    is unreachable, so a Redis outage degrades to per-worker memory, never to an error."""

    def __init__(self, store: ShownStore, *, keep: int = 50,
                 horizon: timedelta = timedelta(days=7)) -> None:
        self.store = store
        self.keep = keep
        self.horizon = horizon
        self.local = ShownItems(horizon=horizon)

    def record(self, tenant: str, subject: str, item_ids: Sequence[str], when: datetime) -> None:
        self.local.record(tenant, subject, item_ids, when)
        try:
            self.store.record_shown(tenant, subject, item_ids, when, keep=self.keep,
                                    ttl=self.horizon)
        except Unavailable as exc:
            log.warning("shown items not shared (kept in this worker): %s", exc.message)

    def unclicked(self, tenant: str, subject: str, since: datetime,
                  interactions: Sequence[Interaction]) -> dict[str, int]:
        try:
            answers = self.store.shown_answers(tenant, subject)
        except Unavailable:
            return self.local.unclicked(tenant, subject, since, interactions)
        times: dict[str, list[datetime]] = {}
        for ts, items in answers:
            when = datetime.fromtimestamp(ts, UTC)
            if when <= since:
                continue
            for item_id in items:
                times.setdefault(item_id, []).append(when)
        return _counts(times, since, interactions)

    def merge(self, tenant: str, source: str, target: str) -> None:
        """Identity merge in this worker's fallback memory; the shared list moves with the rest
        of the person's online state (``merge_users`` of the Redis state)."""
        self.local.merge(tenant, source, target)

    def forget(self, tenant: str, subjects: Sequence[str]) -> int:
        dropped = self.local.forget(tenant, subjects)
        for subject in subjects:
            try:
                dropped += int(self.store.forget_shown(tenant, subject))
            except Unavailable:  # the online state's erasure deletes the key as well
                log.warning("shown items of an erased person not deleted now")
        return dropped
