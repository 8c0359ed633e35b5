"""The online state port: what serving reads at request time and ingestion updates per event.

One small interface for the in-process adapter (:mod:`.memory`) and the Redis adapter
(:mod:`.redis`); both pass ``personify.testing.online_state_contracts``. Every method takes the
tenant; every method whose answer depends on time takes ``now`` (default: the wall clock).

Example::

    state = open_online_state(None)                 # or "redis://127.0.0.1:6379/0"
    state.apply("default", events)                  # validated personify.domain.events.Event
    user = state.user_state("default", "u1")
    exclude = user.excluded(seen_within=timedelta(days=7), bought_within=None)
    hot = state.trending("default", 20, segment="country:DE")
    near = state.neighbours("default", "item-9", 10)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np

from personify.domain.events import Event, EventType

GLOBAL_SEGMENT = "global"
"""The segment every counted event contributes to."""

DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        EventType.VIEW: 1.0,
        EventType.CLICK: 1.0,
        EventType.RATING: 1.0,
        EventType.ADD_TO_CART: 2.0,
        EventType.LIKE: 2.0,
        EventType.SHARE: 2.0,
        EventType.PURCHASE: 3.0,
        EventType.DISLIKE: 0.0,
        EventType.NOT_INTERESTED: 0.0,
        EventType.REMOVE_FROM_CART: 0.0,
        EventType.RETURN: 0.0,
    }
)
"""Popularity / co-occurrence weight per event type; 0 = logged and excluded, never counted."""


@dataclass(frozen=True)
class OnlineStateConfig:
    """Bounds and maths of the online state; the defaults suit a Gowalla-sized shop.

    ``context_segments`` names the context fields that define popularity segments
    (``country``, ``region``, ``city``, ``device``, ``channel``, and ``daypart``: night,
    morning, afternoon or evening of the event's local time, else of its UTC time): an event
    from Germany also counts for segment ``country:DE``. Callers may add segments per event in
    :meth:`apply`.
    """

    recent_cap: int = 200
    session_gap: timedelta = timedelta(minutes=30)
    session_window: int = 10
    exclusion_cap: int = 1000
    user_ttl: timedelta = timedelta(days=90)
    half_life: timedelta = timedelta(days=7)
    min_popularity: float = 1e-3
    max_items_per_segment: int = 100_000
    neighbours_cap: int = 100
    weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_WEIGHTS)
    default_weight: float = 1.0
    bought_types: frozenset[str] = frozenset({EventType.PURCHASE})
    disliked_types: frozenset[str] = frozenset({EventType.DISLIKE, EventType.NOT_INTERESTED})
    context_segments: tuple[str, ...] = ("country", "city", "device", "daypart")
    tenant_weights: Callable[[str], Mapping[str, float]] | None = field(
        default=None, compare=False)
    """The weights a tenant declared for its own event types (``PUT /v1/event-types/{name}``
    with a ``weight``): they count in that tenant's live popularity and co-occurrence as in
    its training; None = ``weights`` for every tenant."""

    def weight(self, event_type: str) -> float:
        """The counting weight of an event type (unknown custom types get ``default_weight``)."""
        return self.weights.get(event_type, self.default_weight)

    def for_tenant(self, tenant: str) -> OnlineStateConfig:
        """This config with ``tenant``'s declared weights over ``weights`` (itself when the
        tenant declared none)."""
        if self.tenant_weights is None:
            return self
        declared = self.tenant_weights(tenant)
        if not declared or all(self.weights.get(k) == v for k, v in declared.items()):
            return self
        return replace(self, weights={**self.weights, **declared}, tenant_weights=None)


@dataclass(frozen=True, slots=True)
class Interaction:
    """One logged interaction of a user with an item."""

    item_id: str
    type: str
    timestamp: datetime


@dataclass(frozen=True)
class UserState:
    """Everything the serving chain reads about one user in one call.

    ``recent`` and ``session`` are newest first; ``session`` holds the interactions since the
    last gap longer than ``session_gap`` and is empty when that gap reaches ``now``. The
    exclusion maps hold the last time of each item.
    """

    user: str
    recent: list[Interaction] = field(default_factory=list)
    session: list[Interaction] = field(default_factory=list)
    seen: dict[str, datetime] = field(default_factory=dict)
    bought: dict[str, datetime] = field(default_factory=dict)
    disliked: dict[str, datetime] = field(default_factory=dict)
    last_active: datetime | None = None

    def excluded(
        self,
        *,
        seen_within: timedelta | None = None,
        bought_within: timedelta | None = None,
        disliked_within: timedelta | None = None,
        now: datetime | None = None,
    ) -> set[str]:
        """Items to exclude: seen / bought / disliked within each window (``None`` = ever)."""
        now = now or datetime.now(UTC)
        out: set[str] = set()
        for marks, window in (
            (self.seen, seen_within),
            (self.bought, bought_within),
            (self.disliked, disliked_within),
        ):
            if window is None:
                out.update(marks)
            else:
                cutoff = now - window
                out.update(item for item, when in marks.items() if when >= cutoff)
        return out


class OnlineState(Protocol):
    """Per-user recent state, decayed popularity, co-occurrence and user vectors of one tenant.

    Users are keyed by ``Event.subject``: the user id, or ``anon:<anonymous id>``.
    Adapters raise :class:`personify.domain.errors.Unavailable` when their backing service is
    down, never a driver exception.
    """

    config: OnlineStateConfig

    def apply(
        self,
        tenant: str,
        events: Sequence[Event],
        *,
        segments: Mapping[str, Sequence[str]] | None = None,
        now: datetime | None = None,
    ) -> None:
        """Fold a batch of validated events in, in order; ``segments`` adds popularity segments
        by ``event_id`` (e.g. ``{"e1": ["hour:18"]}``). Events without an item are ignored."""
        ...

    def user_state(self, tenant: str, user: str, *, now: datetime | None = None) -> UserState:
        """The user's recent items, session and exclusion marks (empty when unknown / expired)."""
        ...

    def trending(
        self, tenant: str, n: int, *, segment: str | None = None, now: datetime | None = None
    ) -> list[tuple[str, float]]:
        """The ``n`` items with the highest decayed popularity in ``segment`` (default global)."""
        ...

    def item_popularity(
        self,
        tenant: str,
        item_ids: Sequence[str],
        *,
        segment: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, float]:
        """Decayed popularity of each item at ``now`` (0.0 when not counted)."""
        ...

    def neighbours(self, tenant: str, item_id: str, n: int) -> list[tuple[str, float]]:
        """Items most often in the same session as ``item_id``, with co-occurrence counts."""
        ...

    def set_user_vector(
        self,
        tenant: str,
        model_version: str,
        user: str,
        vector: np.ndarray,
        *,
        now: datetime | None = None,
    ) -> None:
        """Store the user's latent vector (float32) for one model version."""
        ...

    def get_user_vector(
        self, tenant: str, model_version: str, user: str, *, now: datetime | None = None
    ) -> np.ndarray | None:
        """The stored float32 vector, or ``None``."""
        ...

    def forget_user(self, tenant: str, user: str) -> None:
        """Erase the user's state and subtract their logged contributions from the shared
        popularity and co-occurrence counters."""
        ...

    def merge_users(
        self, tenant: str, anonymous_key: str, user_id: str, *, now: datetime | None = None
    ) -> None:
        """On login: move the anonymous subject's state onto ``user_id`` and drop the former."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


DAYPARTS = ("night", "morning", "afternoon", "evening")
"""Six-hour buckets of the day: 0-5, 6-11, 12-17, 18-23."""


def daypart(moment: datetime) -> str:
    return DAYPARTS[moment.hour // 6]


def segment_names(event: Event, fields: Sequence[str]) -> list[str]:
    """The context segments of an event: ``country:DE``, ``device:mobile`` ..."""
    return [name for _, name in context_segments(event.context, event.timestamp, fields)]


def context_segments(
    context: Any, at: datetime, fields: Sequence[str]
) -> list[tuple[str, str]]:
    """``(field, segment)`` of a context at ``at`` (an event's time, a request's now):
    ``("country", "country:DE")``, ``("daypart", "daypart:evening")`` ...; the daypart is of
    ``context.local_time`` when the client sent it, else of ``at`` in UTC."""
    out: list[tuple[str, str]] = []
    location = context.location
    for name in fields:
        value: str | None
        if name == "daypart":
            local = context.local_time
            value = daypart(local if local is not None else at.astimezone(UTC))
        elif name in ("country", "region", "city"):
            value = getattr(location, name) if location is not None else None
        else:
            value = getattr(context, name, None)
        if value:
            value = value.strip()
            out.append((name, f"{name}:{value.upper() if name == 'country' else value}"))
    return out


def check_vector(vector: np.ndarray) -> np.ndarray:
    """A finite 1-D float32 copy of ``vector``, or :class:`InvalidInput`."""
    from personify.domain.errors import InvalidInput

    array = np.asarray(vector, dtype=np.float32)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        raise InvalidInput(
            f"a user vector must be a non-empty 1-D finite array, got shape {array.shape}",
            field="vector",
            accepted="a 1-D array of finite floats",
        )
    return np.ascontiguousarray(array)
