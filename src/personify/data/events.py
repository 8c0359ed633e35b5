"""Domain events -> weighted implicit feedback (``Interactions``).

A purchase counts more than a view, a dislike is negative: the weights are configuration
(``EventWeights``), with the defaults below. The user of an event is ``event.subject`` (the user
id, or ``anon:<anonymous id>``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from personify.data.interactions import Interactions
from personify.data.vocabulary import Vocabulary
from personify.domain.errors import ConfigurationError
from personify.domain.events import Event

DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "view": 1.0,
        "click": 2.0,
        "dwell": 1.0,
        "add_to_cart": 4.0,
        "remove_from_cart": -1.0,
        "purchase": 8.0,
        "like": 4.0,
        "share": 3.0,
        "email_click": 2.0,
        "dislike": -4.0,
        "not_interested": -4.0,
        "return": -4.0,
    }
)
"""Event type -> weight; types absent here (impressions, searches, pages ...) are ignored."""


@dataclass(frozen=True)
class EventWeights:
    """How much each event type counts. ``rating`` is value-based: ``(value - rating_neutral)
    * rating_scale`` (a 5 on a 1-5 scale with neutral 3 gives +4, a 1 gives -4)."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    rating_neutral: float = 3.0
    rating_scale: float = 2.0
    use_quantity: bool = False

    def __post_init__(self) -> None:
        for name, value in self.weights.items():
            if not np.isfinite(value):
                raise ConfigurationError(
                    f"weight of {name!r} is not a finite number", field=f"weights.{name}",
                    accepted="a finite float (negative for negative feedback)",
                )

    def weight(self, event: Event) -> float | None:
        """The weight of one event, or None when its type does not count."""
        if event.type == "rating":
            if event.value is None:
                return None
            return (float(event.value) - self.rating_neutral) * self.rating_scale
        base = self.weights.get(event.type)
        if base is None:
            return None
        if self.use_quantity and event.quantity is not None and event.quantity > 0:
            return base * float(event.quantity)
        return base


def interactions_from_events(
    events: Iterable[Event],
    weights: EventWeights | None = None,
    items: Vocabulary | None = None,
    users: Vocabulary | None = None,
) -> Interactions:
    """Weighted interactions (with timestamps, in seconds since the epoch) from events.

    Events without an item or whose type carries no weight are skipped. ``items`` / ``users``
    fix the index space (events outside it are dropped), e.g. the catalogue's vocabulary.
    """
    weights = weights or EventWeights()
    subjects: list[str] = []
    item_ids: list[str] = []
    values: list[float] = []
    times: list[float] = []
    for event in events:
        if event.item_id is None:
            continue
        w = weights.weight(event)
        if w is None:
            continue
        subjects.append(event.subject)
        item_ids.append(event.item_id)
        values.append(w)
        times.append(event.timestamp.timestamp())
    return Interactions.from_arrays(
        subjects, item_ids, np.asarray(values, dtype=np.float32),
        np.asarray(times, dtype=np.float64), users=users, items=items,
    )
