"""Anti-repetition: what the chain showed each person, so that items shown again and again
without a click sink in that person's next answers for a while (``RecommendationRequest.
repetition``: a factor per unclicked impression within a window of hours).

Held in process, per serving worker, from the chain's own logged answers: bounded (people,
items per person), expiring after ``horizon``, and forgotten on erasure (an engine forgetter).
A click, a view or any other interaction with an item after it was shown clears its count.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta

from personify.storage.online.port import Interaction


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
        last: dict[str, datetime] = {}
        for inter in interactions:
            if inter.item_id in snapshot and inter.timestamp > last.get(inter.item_id, since):
                last[inter.item_id] = inter.timestamp
        out = {}
        for item_id, times in snapshot.items():
            after = last.get(item_id, since)
            count = sum(t > after for t in times)
            if count:
                out[item_id] = count
        return out

    def forget(self, tenant: str, subjects: Sequence[str]) -> int:
        """Erasure: drop what was shown to these people."""
        with self._lock:
            return sum(self._people.pop((tenant, s), None) is not None for s in subjects)
