"""What a batch of events, an erasure or a merge changes: pure functions shared by adapters.

Both adapters store each user's interaction log in arrival order and derive every shared
counter from it with these functions, so the counters are always "the sum over users of what
their logs contribute". That is what makes :meth:`OnlineState.forget_user` exact: replaying a
user's log yields precisely the popularity and co-occurrence they added (as long as the log
was never trimmed by ``recent_cap``; older contributions stay, decayed).
"""

from __future__ import annotations

import sys
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from personify.domain.events import Event, EventType
from personify.storage.online.decay import decay_rate, log_add, log_weight
from personify.storage.online.port import (
    GLOBAL_SEGMENT,
    Interaction,
    OnlineStateConfig,
    UserState,
    segment_names,
)


class Entry(NamedTuple):
    """One logged interaction; ``segments`` are the non-global segments it counted for."""

    ts: float
    type: str
    item: str
    segments: tuple[str, ...]


PopKey = tuple[str, str]
"""(segment, item)."""
Pair = tuple[str, str]
"""(item, neighbour)."""


@dataclass
class UserChanges:
    """The per-user part of a batch: new log entries and exclusion marks (item -> last ts)."""

    entries: list[Entry] = field(default_factory=list)
    seen: dict[str, float] = field(default_factory=dict)
    bought: dict[str, float] = field(default_factory=dict)
    disliked: dict[str, float] = field(default_factory=dict)
    last_ts: float = float("-inf")


@dataclass
class BatchChanges:
    """Everything one :meth:`apply` call writes; ``popularity`` holds log-space increments."""

    users: dict[str, UserChanges] = field(default_factory=dict)
    popularity: dict[PopKey, float] = field(default_factory=dict)
    pairs: Counter[Pair] = field(default_factory=Counter)


def to_epoch(moment: datetime | None) -> float:
    """Epoch seconds of ``moment`` (the wall clock when ``None``)."""
    return (moment or datetime.now(UTC)).timestamp()


def from_epoch(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def expired(last_active: float | None, now: float, config: OnlineStateConfig) -> bool:
    """Whether a user last active at ``last_active`` has outlived ``user_ttl`` at ``now``."""
    return last_active is None or now - last_active > config.user_ttl.total_seconds()


def entries_by_user(
    events: Sequence[Event],
    config: OnlineStateConfig,
    segments: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[Entry]]:
    """New log entries per subject, in batch order; impressions and item-less events skipped."""
    out: dict[str, list[Entry]] = {}
    intern = sys.intern
    for event in events:
        if event.item_id is None or event.type == EventType.IMPRESSION:
            continue
        names = segment_names(event, config.context_segments)
        if segments and event.event_id in segments:
            names.extend(segments[event.event_id])
        segs = tuple(dict.fromkeys(intern(s) for s in names if s and s != GLOBAL_SEGMENT))
        entry = Entry(event.timestamp.timestamp(), intern(event.type), intern(event.item_id), segs)
        out.setdefault(event.subject, []).append(entry)
    return out


def popularity_of(
    entries: Iterable[Entry], config: OnlineStateConfig, into: dict[PopKey, float] | None = None
) -> dict[PopKey, float]:
    """Log-space contributions of entries to (segment, item) counters, summed."""
    lam = decay_rate(config.half_life)
    out = into if into is not None else {}
    for entry in entries:
        weight = config.weight(entry.type)
        if weight <= 0:
            continue
        score = log_weight(weight, entry.ts, lam)
        for segment in (GLOBAL_SEGMENT, *entry.segments):
            key = (segment, entry.item)
            previous = out.get(key)
            out[key] = score if previous is None else log_add(previous, score)
    return out


def session_pairs(
    history: Sequence[Entry], new: Iterable[Entry], config: OnlineStateConfig
) -> Counter[Pair]:
    """Co-occurrence increments of ``new`` entries (arrival order) after ``history``.

    Each counted entry pairs with the distinct other counted items among the previous
    ``session_window`` log entries within ``session_gap`` of it, in both directions.
    """
    size = config.session_window
    window: deque[Entry] = deque(history[-size:] if size > 0 else (), maxlen=max(size, 1))
    gap = config.session_gap.total_seconds()
    weight = config.weight
    counted: dict[str, bool] = {}
    out: Counter[Pair] = Counter()
    for entry in new:
        kind = entry.type
        if kind not in counted:
            counted[kind] = weight(kind) > 0
        if size > 0 and counted[kind]:
            item, ts = entry.item, entry.ts
            partners = set()
            for p in window:
                if p.item != item and -gap <= ts - p.ts <= gap:
                    if p.type not in counted:
                        counted[p.type] = weight(p.type) > 0
                    if counted[p.type]:
                        partners.add(p.item)
            for partner in partners:
                out[(item, partner)] += 1
                out[(partner, item)] += 1
        window.append(entry)
    return out


def batch_changes(
    new_entries: Mapping[str, list[Entry]],
    histories: Mapping[str, Sequence[Entry]],
    config: OnlineStateConfig,
) -> BatchChanges:
    """Plan a batch given each subject's latest log entries (arrival order, oldest first)."""
    changes = BatchChanges()
    for user, entries in new_entries.items():
        mine = UserChanges(entries=entries)
        for entry in entries:
            mine.last_ts = max(mine.last_ts, entry.ts)
            _mark(mine.seen, entry)
            if entry.type in config.bought_types:
                _mark(mine.bought, entry)
            if entry.type in config.disliked_types:
                _mark(mine.disliked, entry)
        changes.users[user] = mine
        popularity_of(entries, config, changes.popularity)
        changes.pairs.update(session_pairs(histories.get(user, ()), entries, config))
    return changes


def _mark(marks: dict[str, float], entry: Entry) -> None:
    if entry.ts > marks.get(entry.item, float("-inf")):
        marks[entry.item] = entry.ts


def merged_log(first: Sequence[Entry], second: Sequence[Entry], cap: int) -> list[Entry]:
    """Two logs (arrival order) merged by timestamp, keeping the newest ``cap``."""
    merged = sorted([*first, *second], key=lambda e: e.ts)
    return merged[-cap:] if cap > 0 else []


def merge_pairs_delta(
    anonymous: Sequence[Entry], user: Sequence[Entry], merged: Sequence[Entry],
    config: OnlineStateConfig,
) -> Counter[Pair]:
    """Co-occurrence change that makes counters match the merged log (may be negative)."""
    delta = session_pairs((), merged, config)
    delta.subtract(session_pairs((), anonymous, config))
    delta.subtract(session_pairs((), user, config))
    return Counter({pair: n for pair, n in delta.items() if n != 0})


def merge_marks(a: Mapping[str, float], b: Mapping[str, float], cap: int) -> dict[str, float]:
    """Union of two exclusion maps keeping the later time, bounded to the newest ``cap``."""
    out = dict(a)
    for item, ts in b.items():
        if ts > out.get(item, float("-inf")):
            out[item] = ts
    if len(out) > cap:
        out = dict(sorted(out.items(), key=lambda kv: kv[1])[-cap:])
    return out


def user_state_from(
    user: str,
    log: Sequence[Entry],
    seen: Mapping[str, float],
    bought: Mapping[str, float],
    disliked: Mapping[str, float],
    last_active: float | None,
    now: float,
    config: OnlineStateConfig,
) -> UserState:
    """The public view of stored user state; an expired user reads as empty."""
    if last_active is None or expired(last_active, now, config):
        return UserState(user=user)
    ordered = sorted(log, key=lambda e: e.ts, reverse=True)
    recent = [Interaction(e.item, e.type, from_epoch(e.ts)) for e in ordered]
    gap = config.session_gap.total_seconds()
    session: list[Interaction] = []
    previous = now
    for entry, interaction in zip(ordered, recent, strict=True):
        if previous - entry.ts > gap:
            break
        session.append(interaction)
        previous = entry.ts
    return UserState(
        user=user,
        recent=recent,
        session=session,
        seen={item: from_epoch(ts) for item, ts in seen.items()},
        bought={item: from_epoch(ts) for item, ts in bought.items()},
        disliked={item: from_epoch(ts) for item, ts in disliked.items()},
        last_active=from_epoch(last_active),
    )
