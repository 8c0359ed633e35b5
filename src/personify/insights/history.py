"""One person's purchase history reduced to the numbers the customer-base models read: purchase
days, spend per day, and the BG/NBD triple (x, t_x, T) in days."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from personify.domain.events import Event

PURCHASE = "purchase"
RETURN = "return"
DAY_S = 86_400.0


def event_amount(event: Event) -> float:
    """What a purchase event is worth: ``value`` when given, else ``price x quantity`` (quantity
    1 when absent), else 0."""
    if event.value is not None:
        return max(float(event.value), 0.0)
    if event.price is not None:
        return float(event.price) * float(event.quantity if event.quantity is not None else 1.0)
    return 0.0


@dataclass
class PurchaseHistory:
    """Purchases grouped by UTC calendar day (several lines of one order, or several orders on
    one day, are one transaction for the models, as in the BG/NBD paper's daily data)."""

    days: dict[date, float] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    orders: set[str] = field(default_factory=set)
    lines: int = 0

    @classmethod
    def of(cls, events: Iterable[Event]) -> PurchaseHistory:
        history = cls()
        for event in events:
            history.add(event)
        return history

    def add(self, event: Event) -> None:
        ts = event.timestamp
        if self.first_seen is None or ts < self.first_seen:
            self.first_seen = ts
        if self.last_seen is None or ts > self.last_seen:
            self.last_seen = ts
        if event.type != PURCHASE:
            return
        day = ts.date()
        self.days[day] = self.days.get(day, 0.0) + event_amount(event)
        self.orders.add(event.order_id or f"{event.event_id}")
        self.lines += 1

    @property
    def purchase_days(self) -> list[date]:
        return sorted(self.days)

    @property
    def spend(self) -> float:
        return float(sum(self.days.values()))

    def triple(self, now: datetime) -> tuple[int, float, float] | None:
        """(x repeat purchase days, t_x, T) in days, or None without any purchase."""
        days = self.purchase_days
        if not days:
            return None
        first = days[0]
        t_x = float((days[-1] - first).days)
        T = max((now.date() - first).days, t_x)
        return len(days) - 1, t_x, float(T)

    def repeat_mean_value(self) -> float:
        """Mean spend of the repeat purchase days (the Gamma-Gamma input; 0 without repeats)."""
        days = self.purchase_days
        if len(days) < 2:
            return 0.0
        return float(sum(self.days[d] for d in days[1:]) / (len(days) - 1))

    def recency_days(self, now: datetime) -> float | None:
        days = self.purchase_days
        return float((now.date() - days[-1]).days) if days else None

    def gaps(self) -> list[int]:
        days = self.purchase_days
        return [(b - a).days for a, b in itertools.pairwise(days)]
