"""In-process online state: dicts behind one lock, for the embedded mode and as a fallback.

Memory is bounded the same way as in Redis: capped logs and exclusion maps, users dropped after
``user_ttl`` without activity (swept every ``sweep_every`` applied events), popularity counters
dropped below ``min_popularity`` and capped per segment, ``neighbours_cap`` neighbours per item.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from personify.domain.events import Event
from personify.domain.tenants import validate_tenant_id
from personify.storage.online import changes as ch
from personify.storage.online.decay import decay_rate, log_add, log_sub, score_floor, value_at
from personify.storage.online.port import (
    GLOBAL_SEGMENT,
    OnlineStateConfig,
    UserState,
    check_vector,
)

TOP_CACHE_SIZE = 256
"""Members kept in each segment's incremental top list (trending reads of up to this many)."""


@dataclass
class _User:
    log: deque[ch.Entry]
    seen: dict[str, float] = field(default_factory=dict)
    bought: dict[str, float] = field(default_factory=dict)
    disliked: dict[str, float] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    last_active: float = float("-inf")


class _Top:
    """The true top ``size`` of a segment, kept up to date while scores only increase."""

    def __init__(self, scores: Mapping[str, float], size: int) -> None:
        self.size = size
        self.members = dict(heapq.nlargest(size, scores.items(), key=lambda kv: kv[1]))
        self.floor = min(self.members.values(), default=float("-inf"))

    def raised(self, item: str, score: float) -> None:
        """Record that ``item`` now scores ``score`` (scores never decrease between rebuilds)."""
        if item in self.members or len(self.members) < self.size:
            self.members[item] = score
            if len(self.members) == self.size:
                self.floor = min(self.members.values())
            return
        if score <= self.floor:  # ``floor`` is a lower bound of the smallest member
            return
        weakest = min(self.members, key=self.members.__getitem__)
        if score > self.members[weakest]:
            del self.members[weakest]
            self.members[item] = score
        self.floor = min(self.members.values())


@dataclass
class _Tenant:
    users: dict[str, _User] = field(default_factory=dict)
    popularity: dict[str, dict[str, float]] = field(default_factory=dict)
    tops: dict[str, _Top] = field(default_factory=dict)
    co: dict[str, dict[str, float]] = field(default_factory=dict)
    popularity_version: int = 0
    """Bumped by every change of a popularity counter (``trending`` caches by it)."""
    trending: dict[tuple[str, int], tuple[int, list[tuple[str, float]]]] = field(
        default_factory=dict
    )


class MemoryOnlineState:
    """The in-process :class:`~personify.storage.online.port.OnlineState` (thread-safe)."""

    def __init__(self, config: OnlineStateConfig | None = None, *, sweep_every: int = 10_000):
        self.config = config or OnlineStateConfig()
        self._lam = decay_rate(self.config.half_life)
        self._tenants: dict[str, _Tenant] = {}
        self._lock = threading.Lock()
        self._sweep_every = sweep_every
        self._since_sweep = 0

    def _tenant(self, tenant: str) -> _Tenant:
        validate_tenant_id(tenant)
        found = self._tenants.get(tenant)
        if found is None:
            found = self._tenants[tenant] = _Tenant()
        return found

    # -- writes -------------------------------------------------------------------------------

    def apply(
        self,
        tenant: str,
        events: Sequence[Event],
        *,
        segments: Mapping[str, Sequence[str]] | None = None,
        now: datetime | None = None,
    ) -> None:
        """Fold a batch of events in (see the port)."""
        new = ch.entries_by_user(events, self.config, segments)
        at = ch.to_epoch(now)
        with self._lock:
            state = self._tenant(tenant)
            for user in new:
                record = state.users.get(user)
                if record is not None and ch.expired(record.last_active, at, self.config):
                    del state.users[user]
            histories = {u: list(state.users[u].log) for u in new if u in state.users}
            batch = ch.batch_changes(new, histories, self.config.for_tenant(tenant))
            for user, mine in batch.users.items():
                self._apply_user(state, user, mine)
            self._add_popularity(state, batch.popularity)
            self._add_pairs(state, batch.pairs)
            self._since_sweep += sum(len(m.entries) for m in batch.users.values())
            if self._since_sweep >= self._sweep_every:
                self._sweep(at)

    def _apply_user(self, state: _Tenant, user: str, mine: ch.UserChanges) -> None:
        record = state.users.get(user)
        if record is None:
            record = state.users[user] = _User(log=deque(maxlen=self.config.recent_cap))
        record.log.extend(mine.entries)
        record.last_active = max(record.last_active, mine.last_ts)
        cap = self.config.exclusion_cap
        for marks, updates in (
            (record.seen, mine.seen),
            (record.bought, mine.bought),
            (record.disliked, mine.disliked),
        ):
            for item, ts in updates.items():
                if ts > marks.get(item, float("-inf")):
                    marks[item] = ts
            if len(marks) > cap:
                for item, _ in heapq.nsmallest(len(marks) - cap, marks.items(), key=_by_ts):
                    del marks[item]

    def _add_popularity(self, state: _Tenant, increments: Mapping[ch.PopKey, float]) -> None:
        if increments:
            state.popularity_version += 1
        touched: set[str] = set()
        for (segment, item), score in increments.items():
            counters = state.popularity.get(segment)
            if counters is None:
                counters = state.popularity[segment] = {}
            previous = counters.get(item)
            new = score if previous is None else log_add(previous, score)
            counters[item] = new
            top = state.tops.get(segment)
            if top is not None:
                top.raised(item, new)
            touched.add(segment)
        cap = self.config.max_items_per_segment
        for segment in touched:
            counters = state.popularity[segment]
            if len(counters) > cap:
                drop = heapq.nsmallest(len(counters) - cap, counters.items(), key=_by_score_item)
                for item, _ in drop:
                    del counters[item]
                state.tops.pop(segment, None)

    def _add_pairs(self, state: _Tenant, pairs: Mapping[ch.Pair, int]) -> None:
        touched: set[str] = set()
        for (item, other), count in pairs.items():
            row = state.co.get(item)
            if row is None:
                row = state.co[item] = {}
            row[other] = row.get(other, 0.0) + count
            touched.add(item)
        cap = self.config.neighbours_cap
        for item in touched:
            row = state.co[item]
            if len(row) > cap:
                for other, _ in heapq.nsmallest(len(row) - cap, row.items(), key=_by_score_item):
                    del row[other]

    def _sweep(self, now: float) -> None:
        """Drop expired users and popularity counters worth less than ``min_popularity``."""
        self._since_sweep = 0
        floor = score_floor(self.config.min_popularity, now, self._lam)
        for state in self._tenants.values():
            cfg = self.config
            gone = [u for u, r in state.users.items() if ch.expired(r.last_active, now, cfg)]
            for user in gone:
                del state.users[user]
            state.popularity_version += 1
            for segment, counters in list(state.popularity.items()):
                for item in [i for i, s in counters.items() if s < floor]:
                    del counters[item]
                if not counters:
                    del state.popularity[segment]
                state.tops.pop(segment, None)

    # -- reads --------------------------------------------------------------------------------

    def user_state(self, tenant: str, user: str, *, now: datetime | None = None) -> UserState:
        """The user's recent items, session and exclusion marks."""
        with self._lock:
            record = self._tenant(tenant).users.get(user)
            if record is None:
                return UserState(user=user)
            log, seen = list(record.log), dict(record.seen)
            bought, disliked = dict(record.bought), dict(record.disliked)
            last_active = record.last_active
        return ch.user_state_from(
            user, log, seen, bought, disliked, last_active, ch.to_epoch(now), self.config
        )

    def trending(
        self, tenant: str, n: int, *, segment: str | None = None, now: datetime | None = None
    ) -> list[tuple[str, float]]:
        """Top ``n`` decayed popularity in a segment."""
        if n <= 0:
            return []
        at = ch.to_epoch(now)
        floor = score_floor(self.config.min_popularity, at, self._lam)
        name = segment or GLOBAL_SEGMENT
        with self._lock:
            state = self._tenant(tenant)
            cached = state.trending.get((name, n))
            if cached is not None and cached[0] == state.popularity_version:
                best = cached[1]
            else:
                counters = state.popularity.get(name, {})
                if n <= TOP_CACHE_SIZE:
                    top = state.tops.get(name)
                    if top is None:
                        top = state.tops[name] = _Top(counters, TOP_CACHE_SIZE)
                    pool: Mapping[str, float] = top.members
                else:
                    pool = counters
                best = heapq.nlargest(n, pool.items(), key=_by_score_item)
                if len(state.trending) >= 256:
                    state.trending.clear()
                state.trending[(name, n)] = (state.popularity_version, best)
        return [(item, value_at(s, at, self._lam)) for item, s in best if s >= floor]

    def item_popularity(
        self,
        tenant: str,
        item_ids: Sequence[str],
        *,
        segment: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, float]:
        """Decayed popularity per item (0.0 when absent or below ``min_popularity``)."""
        at = ch.to_epoch(now)
        floor = score_floor(self.config.min_popularity, at, self._lam)
        with self._lock:
            counters = self._tenant(tenant).popularity.get(segment or GLOBAL_SEGMENT, {})
            scores = {item: counters.get(item) for item in item_ids}
        return {
            item: value_at(s, at, self._lam) if s is not None and s >= floor else 0.0
            for item, s in scores.items()
        }

    def neighbours(self, tenant: str, item_id: str, n: int) -> list[tuple[str, float]]:
        """Items most often in the same session as ``item_id``."""
        with self._lock:
            row = self._tenant(tenant).co.get(item_id, {})
            return heapq.nlargest(max(n, 0), row.items(), key=_by_score_item)

    # -- vectors ------------------------------------------------------------------------------

    def set_user_vector(
        self,
        tenant: str,
        model_version: str,
        user: str,
        vector: np.ndarray,
        *,
        now: datetime | None = None,
    ) -> None:
        """Store a float32 copy of the user's vector."""
        array = check_vector(vector)
        at = ch.to_epoch(now)
        with self._lock:
            state = self._tenant(tenant)
            record = state.users.get(user)
            if record is None:
                record = state.users[user] = _User(log=deque(maxlen=self.config.recent_cap))
            record.vectors[model_version] = array
            record.last_active = max(record.last_active, at)

    def get_user_vector(
        self, tenant: str, model_version: str, user: str, *, now: datetime | None = None
    ) -> np.ndarray | None:
        """A copy of the stored vector, or ``None`` (also when the user expired)."""
        at = ch.to_epoch(now)
        with self._lock:
            record = self._tenant(tenant).users.get(user)
            if record is None or ch.expired(record.last_active, at, self.config):
                return None
            found = record.vectors.get(model_version)
            return None if found is None else found.copy()

    # -- erasure and identity -----------------------------------------------------------------

    def forget_user(self, tenant: str, user: str) -> None:
        """Erase the user and subtract their logged contributions from shared counters."""
        with self._lock:
            state = self._tenant(tenant)
            record = state.users.pop(user, None)
            if record is None:
                return
            log = list(record.log)
            state.popularity_version += 1
            cfg = self.config.for_tenant(tenant)
            for (segment, item), score in ch.popularity_of(log, cfg).items():
                counters = state.popularity.get(segment)
                if counters is None or item not in counters:
                    continue
                left = log_sub(counters[item], score)
                if left is None:
                    del counters[item]
                else:
                    counters[item] = left
                state.tops.pop(segment, None)
            self._subtract_pairs(state, ch.session_pairs((), log, cfg))

    def _subtract_pairs(self, state: _Tenant, pairs: Mapping[ch.Pair, int]) -> None:
        for (item, other), count in pairs.items():
            row = state.co.get(item)
            if row is None or other not in row:
                continue
            left = row[other] - count
            if left <= 0:
                del row[other]
                if not row:
                    del state.co[item]
            else:
                row[other] = left

    def merge_users(
        self, tenant: str, anonymous_key: str, user_id: str, *, now: datetime | None = None
    ) -> None:
        """Move the anonymous subject's state onto ``user_id`` (logs merged by time)."""
        key = anonymous_key if anonymous_key.startswith("anon:") else f"anon:{anonymous_key}"
        if key == user_id:
            return
        at = ch.to_epoch(now)
        cfg = self.config.for_tenant(tenant)
        with self._lock:
            state = self._tenant(tenant)
            anon = state.users.pop(key, None)
            if anon is None or ch.expired(anon.last_active, at, cfg):
                return
            target = state.users.get(user_id)
            if target is None or ch.expired(target.last_active, at, cfg):
                target = state.users[user_id] = _User(log=deque(maxlen=cfg.recent_cap))
            merged = ch.merged_log(anon.log, target.log, cfg.recent_cap)
            delta = ch.merge_pairs_delta(list(anon.log), list(target.log), merged, cfg)
            self._add_pairs(state, {p: n for p, n in delta.items() if n > 0})
            self._subtract_pairs(state, {p: -n for p, n in delta.items() if n < 0})
            target.log = deque(merged, maxlen=cfg.recent_cap)
            target.seen = ch.merge_marks(target.seen, anon.seen, cfg.exclusion_cap)
            target.bought = ch.merge_marks(target.bought, anon.bought, cfg.exclusion_cap)
            target.disliked = ch.merge_marks(target.disliked, anon.disliked, cfg.exclusion_cap)
            target.vectors = {**anon.vectors, **target.vectors}
            target.last_active = max(target.last_active, anon.last_active)

    def close(self) -> None:
        """Nothing to release."""

    def people_count(self) -> int:
        """People and anonymous visitors held, over every tenant (the metrics' size gauge)."""
        with self._lock:
            return sum(len(t.users) for t in self._tenants.values())

    def active_users(self, tenant: str, *, now: datetime | None = None) -> int:
        """How many users of the tenant have unexpired state (for sizing and benchmarks)."""
        at = ch.to_epoch(now)
        with self._lock:
            users = self._tenant(tenant).users.values()
            return sum(1 for r in users if not ch.expired(r.last_active, at, self.config))


def _by_ts(kv: tuple[str, float]) -> float:
    return kv[1]


def _by_score_item(kv: tuple[str, float]) -> tuple[float, str]:
    """Order by score then member, the order of a Redis sorted set."""
    return (kv[1], kv[0])
