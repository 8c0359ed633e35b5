"""Named bandit decision points: one live policy per (tenant, point) in each process, decisions
logged with propensities, rewards attributed from ingested events, learning shared by every
process on the database.

Reward attribution: an event whose ``recommendation_id`` is a decision id, whose type is one of
the point's ``reward_types`` and whose ``item_id`` is a chosen action updates the policy (the
first such event per action counts). A decision *closes* ``reward_window_seconds`` after it was
made: its chosen actions that earned nothing are then updated with reward 0, so the policy learns
from misses too. Rewards after the window are ignored (they would count the round twice).

A decision made ``seen_only`` (a page of rows, whose lower rows may never be scrolled into view)
counts only the actions reported *seen* (:meth:`DecisionPoints.mark_seen`, from the page's
impressions) or rewarded: an action never seen neither earns nor loses, so the policy does not
learn that a row is bad from people who never saw it. Seen marks are per process, like the open
decisions; a process that receives a mark for a decision another one made opens it from the
decision log, and each process closes what it saw (the update log's claim counts each zero once).

Shared learning: every update is first *claimed* in the update log
(``personify_bandit_updates``, unique per point, epoch, decision and action): only the process
whose insert succeeds applies it at once, so a reward seen by two workers, or a window closed by
two, counts once. Each process replays the other processes' rows (at most every
``sync_interval`` seconds, on a decision, and on every ``describe``), so all processes hold the
same updates and converge on the same policy (up to floating-point order). Every
``snapshot_every`` updates a process folds the settled part of the log (rows older than
``settle``) into a state snapshot on the point; the others then reload snapshot + newer rows.
A restart loads the same way. Reconfiguring a point starts a new epoch: every process drops its
policy and open decisions and learns from scratch. The log id order assumes a claim commits
within ``settle`` (10 s) of its insert and that the processes' clocks agree to within it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from personify.domain._fields import Name
from personify.domain.errors import InvalidInput, NotFound
from personify.domain.events import Event
from personify.experiments.bandits import (
    BanditPolicy,
    BernoulliThompson,
    ContextInput,
    Decision,
    DecisionLog,
    LinearThompson,
    LinUCB,
    encode_context,
    policy_from_dict,
)
from personify.experiments.ports import DecisionLogStore
from personify.runtime.decision_log import QueuedDecisionLog
from personify.storage.sql.experiments import (
    BanditUpdate,
    DecisionPointRecord,
    SqlBanditUpdateLog,
    SqlDecisionPointStore,
)

log = logging.getLogger(__name__)

DECISION_ID_PREFIX = "dec-"
"""Decision ids start with this, so the reward listener skips other recommendation ids cheaply."""
MAX_PENDING = 100_000
"""Open decisions kept per point; the oldest are closed early beyond this."""
SYNC_INTERVAL_S = 1.0
"""How often a decision replays the other processes' updates (``describe`` always does)."""
SETTLE = timedelta(seconds=10)
"""Update-log rows younger than this are re-read and never compacted (late commits)."""
SNAPSHOT_EVERY = 500
"""Updates in the log past the snapshot before a process compacts them into a new one."""


class DecisionPointConfig(BaseModel):
    """How a decision point chooses: the policy, its exploration, and what counts as a reward."""

    model_config = ConfigDict(extra="forbid")

    policy: Literal["linucb", "linear_thompson", "bernoulli_thompson"] = "linucb"
    dim: int = Field(default=32, ge=2, le=1024, description="context features after hashing")
    alpha: float = Field(default=1.0, ge=0, le=100, description="LinUCB exploration bonus")
    v: float = Field(default=0.5, gt=0, le=100, description="linear Thompson posterior scale")
    l2: float = Field(default=1.0, gt=0, le=1e6, description="ridge prior of linear policies")
    epsilon: float = Field(default=0.05, ge=0, le=1, description="share of uniform exploration")
    reward_types: dict[Name, float] = Field(
        default_factory=lambda: {"click": 1.0},
        min_length=1,
        max_length=20,
        description="event type -> reward",
    )
    reward_window_seconds: float = Field(default=1800.0, gt=0, le=30 * 86400)
    seed: int | None = None

    def build(self) -> BanditPolicy:
        """A fresh, untrained policy of this configuration."""
        if self.policy == "linucb":
            return LinUCB(self.dim, alpha=self.alpha, l2=self.l2, epsilon=self.epsilon,
                          seed=self.seed)
        if self.policy == "linear_thompson":
            return LinearThompson(self.dim, v=self.v, l2=self.l2, epsilon=self.epsilon,
                                  seed=self.seed)
        return BernoulliThompson(epsilon=self.epsilon, seed=self.seed)


@dataclass
class _Pending:
    log: DecisionLog
    closes_at: datetime
    rewarded: set[str] = field(default_factory=set)
    seen: set[str] | None = None
    """The actions reported seen (``seen_only`` decisions); None: every chosen action counts."""

    @classmethod
    def of(cls, record: DecisionLog, closes_at: datetime) -> _Pending:
        return cls(record, closes_at, seen=set() if record.seen_only else None)


@dataclass
class _Live:
    """A point's live policy in this process and where it stands in the shared update log."""

    config: DecisionPointConfig
    policy: BanditPolicy
    epoch: str = ""
    base_seq: int = 0
    """The last log id the snapshot the policy started from includes."""
    seen: int = 0
    """The largest log id a sync has read."""
    read_at: datetime | None = None
    """The clock time of the last log read (rows created since ``read_at - settle`` are read
    again: their ids may be below ``seen``)."""
    applied: set[int] = field(default_factory=set)
    """Log ids above ``base_seq`` the policy holds."""
    updates: int = 0
    """Updates the policy holds, from every process."""
    synced_at: float = -math.inf
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: OrderedDict[str, _Pending] = field(default_factory=OrderedDict)


@dataclass(frozen=True)
class DecisionOutcome:
    """A decision as the API returns it."""

    point: str
    decision: Decision
    log: DecisionLog
    policy: str


class DecisionPoints:
    """The live policies of this process, backed by the point store (configuration and state
    snapshots), its shared update log, and the decision log."""

    def __init__(
        self,
        points: SqlDecisionPointStore,
        decisions: DecisionLogStore,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        updates: SqlBanditUpdateLog | None = None,
        sync_interval: float = SYNC_INTERVAL_S,
        settle: timedelta = SETTLE,
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> None:
        self._points = points
        self._decisions = decisions
        self._updates = updates if updates is not None else points.updates
        self._clock = clock
        self._live: dict[tuple[str, str], _Live] = {}
        self._lock = threading.Lock()
        self.origin = uuid.uuid4().hex
        """This process's name in the update log."""
        self.sync_interval = sync_interval
        self.settle = settle
        self.snapshot_every = snapshot_every

    def configure(self, tenant: str, point: str, config: DecisionPointConfig) -> None:
        """Create or replace a point; a new configuration starts learning from scratch."""
        epoch = self._points.save_config(tenant, point, config.model_dump(mode="json"))
        with self._lock:
            self._live[(tenant, point)] = _Live(config, config.build(), epoch)

    def ensure(self, tenant: str, point: str, config: DecisionPointConfig) -> None:
        """Configure ``point`` with ``config`` unless it is already configured (what it has
        learned is kept; :meth:`configure` restarts learning)."""
        with self._lock:
            if (tenant, point) in self._live:
                return
        if self._points.get(tenant, point) is None:
            self.configure(tenant, point, config)

    def preview(self, tenant: str, point: str, context: ContextInput,
                actions: Sequence[str]) -> list[str]:
        """``actions`` in the order the live policy expects the most of them, without
        exploring or logging a decision (a preview); as given when the point is unknown."""
        try:
            live = self._get(tenant, point)
        except NotFound:
            return list(actions)
        with live.lock:
            means = live.policy.mean_scores(context, actions)
        order = sorted(range(len(actions)), key=lambda k: (-means[k], k))
        return [actions[k] for k in order]

    def describe(self, tenant: str, point: str) -> dict[str, Any]:
        """The configuration and a summary of what the live policy has learned (after
        replaying the other processes' updates)."""
        live = self._get(tenant, point)
        self.sync(tenant, point, force=True)
        with live.lock:
            state = live.policy.to_dict()
            # linear policies keep "arms"; Bernoulli Thompson per-action "alpha" counts
            arms = state["arms"] if "arms" in state else state.get("alpha", {})
            return {
                "point": point,
                "config": live.config.model_dump(mode="json"),
                "actions_learned": sorted(arms),
                "updates": live.updates,
                "open_decisions": len(live.pending),
                "log_position": live.seen,
            }

    def points(self, tenant: str) -> list[str]:
        return [p.point for p in self._points.list(tenant)]

    def decide(
        self,
        tenant: str,
        point: str,
        context: ContextInput,
        actions: Sequence[str],
        k: int = 1,
        *,
        log_later: bool = False,
        seen_only: bool = False,
    ) -> DecisionOutcome:
        """Rank ``k`` of ``actions`` and log the decision (with its propensities). With
        ``log_later`` (pages of rows) the log line is written behind the request by the
        :class:`~personify.runtime.decision_log.QueuedDecisionLog`, when the store is one.
        With ``seen_only`` only the actions later reported seen (:meth:`mark_seen`) or
        rewarded count when the window closes."""
        live = self._get(tenant, point)
        self.sync(tenant, point)
        now = self._clock()
        with live.lock:
            due = self._expired(live, now)
            decision = live.policy.choose(
                context, actions, k, decision_id=f"{DECISION_ID_PREFIX}{uuid.uuid4().hex}"
            )
            # logged even for the context-free Bernoulli policy: OPE may use it
            record = decision.log(encode_context(context, live.config.dim), actions, point)
            record.timestamp = now
            record.seen_only = seen_only
            live.pending[decision.decision_id] = _Pending.of(
                record, now + timedelta(seconds=live.config.reward_window_seconds)
            )
            while len(live.pending) > MAX_PENDING:
                due.append(live.pending.popitem(last=False)[1])
            policy = live.config.policy
        if log_later and isinstance(self._decisions, QueuedDecisionLog):
            self._decisions.record_later(tenant, record)
        else:
            self._decisions.record(tenant, record)
        if due:
            self._close(tenant, point, live, due)
        return DecisionOutcome(point, decision, record, policy)

    def on_events(self, tenant: str, events: Sequence[Event]) -> None:
        """Ingestion listener: attribute rewards of events quoting a decision id."""
        candidates = [
            e
            for e in events
            if e.recommendation_id is not None
            and e.recommendation_id.startswith(DECISION_ID_PREFIX)
            and e.item_id is not None
        ]
        if not candidates:
            return
        found: dict[str, tuple[_Live, list[BanditUpdate]]] = {}
        for event in candidates:
            try:
                got = self._reward(tenant, event)
            except Exception:  # a bad reward never fails ingestion
                log.exception("could not attribute reward of event %s", event.event_id)
                continue
            if got is not None:
                point, live, update = got
                found.setdefault(point, (live, []))[1].append(update)
        for point, (live, updates) in found.items():
            try:
                self._claim(tenant, point, live, updates)
            except Exception:
                log.exception("could not store %d bandit updates of %s", len(updates), point)

    def mark_seen(
        self, tenant: str, marks: Sequence[tuple[str, str, datetime]]
    ) -> int:
        """Record ``(decision_id, action, when)`` as seen (an impression of a page's row): a
        ``seen_only`` decision's action then earns 0 at the window's close unless rewarded.
        Marks of unknown decisions, of actions not chosen, of decisions that are not
        ``seen_only`` and after the window are ignored. Returns the marks that counted."""
        counted = 0
        for decision_id, action, when in dict.fromkeys(marks):
            try:
                pending = self._open(tenant, decision_id)
            except Exception:  # a bad mark never fails ingestion
                log.exception("could not open decision %s to mark %s seen", decision_id, action)
                continue
            if pending is None:
                continue
            live, found = pending
            with live.lock:
                if (found.seen is None or action not in found.log.chosen
                        or when > found.closes_at or action in found.seen):
                    continue
                found.seen.add(action)
            counted += 1
        return counted

    def _open(self, tenant: str, decision_id: str) -> tuple[_Live, _Pending] | None:
        """The open decision ``decision_id`` of this process, opened from the decision log
        when another process made it; None when unknown or its window has closed."""
        for (t, _point), live in list(self._live.items()):
            if t == tenant:
                found = live.pending.get(decision_id)
                if found is not None:
                    return live, found
        record = self._decisions.get(tenant, decision_id)
        if record is None:
            return None
        try:
            live = self._get(tenant, record.policy)
        except NotFound:  # the point was removed since
            return None
        closes_at = record.timestamp + timedelta(seconds=live.config.reward_window_seconds)
        if self._clock() > closes_at:
            return None
        with live.lock:
            return live, live.pending.setdefault(decision_id, _Pending.of(record, closes_at))

    def close_expired(self, tenant: str, point: str) -> int:
        """Close the point's decisions whose reward window has passed; returns updates made."""
        live = self._get(tenant, point)
        with live.lock:
            due = self._expired(live, self._clock())
        return self._close(tenant, point, live, due) if due else 0

    def sync(self, tenant: str, point: str, *, force: bool = False) -> int:
        """Replay the update-log rows other processes claimed (at most every
        ``sync_interval`` seconds unless ``force``); reload the point when it was reconfigured
        or compacted since. Returns the updates applied."""
        live = self._get(tenant, point)
        now_m = time.monotonic()
        if not force and now_m - live.synced_at < self.sync_interval:
            return 0
        live.synced_at = now_m
        version = self._points.version(tenant, point)
        if version is None:
            return 0
        epoch, seq = version
        if epoch != live.epoch or (seq or 0) > live.base_seq:
            return self._reload(tenant, point, live)
        read_at = self._clock()
        recent = live.read_at - self.settle if live.read_at is not None else None
        rows = self._updates.read(
            tenant, point, epoch, after=live.base_seq, seen=live.seen, recent_since=recent
        )
        applied = 0
        with live.lock:
            if live.epoch == epoch:
                for row in rows:
                    applied += self._apply(live, row)
                    live.seen = max(live.seen, row.id)
                live.read_at = read_at
            pending_log = len(live.applied)
        if pending_log >= self.snapshot_every:
            self.compact(tenant, point)
        return applied

    def compact(self, tenant: str, point: str) -> bool:
        """Fold the settled update-log rows past the point's snapshot into a new snapshot;
        drop the rows the previous snapshot already held. True when a snapshot was saved."""
        record = self._points.get(tenant, point)
        if record is None:
            return False
        policy, updates = self._from_snapshot(record)
        base = record.state_seq or 0
        rows = self._updates.read(
            tenant, point, record.epoch, after=base, created_before=self._clock() - self.settle
        )
        if not rows:
            return False
        for row in rows:
            policy.update(row.action, row.context, row.reward)
        saved = self._points.save_snapshot(
            tenant,
            point,
            epoch=record.epoch,
            state={**policy.to_dict(), "updates": updates + len(rows)},
            seq=rows[-1].id,
            expected_seq=record.state_seq,
        )
        if saved:
            if base:
                self._updates.delete(tenant, point, record.epoch, upto=base)
            live = self._live.get((tenant, point))
            if live is not None:
                live.synced_at = -math.inf  # reload from the new snapshot on the next call
        return saved

    def _reward(self, tenant: str, event: Event) -> tuple[str, _Live, BanditUpdate] | None:
        assert event.recommendation_id is not None and event.item_id is not None
        decision_id = event.recommendation_id
        for (t, point), live in list(self._live.items()):
            if t == tenant and decision_id in live.pending:
                with live.lock:
                    pending = live.pending.get(decision_id)
                    update = self._rewarded(live, pending, event) if pending else None
                return (point, live, update) if update is not None else None
        record = self._decisions.get(tenant, decision_id)
        if record is None:
            return None
        try:
            live = self._get(tenant, record.policy)
        except NotFound:  # the point was removed since
            return None
        closes_at = record.timestamp + timedelta(seconds=live.config.reward_window_seconds)
        if event.timestamp > closes_at or self._clock() > closes_at:
            return None  # the window closed (possibly in another process): already counted
        with live.lock:
            pending = live.pending.setdefault(decision_id, _Pending.of(record, closes_at))
            update = self._rewarded(live, pending, event)
        return (record.policy, live, update) if update is not None else None

    def _rewarded(self, live: _Live, pending: _Pending, event: Event) -> BanditUpdate | None:
        """The update an event earns (marked as counted here), or None."""
        reward = live.config.reward_types.get(event.type)
        action = event.item_id
        if reward is None or action is None or action not in pending.log.chosen:
            return None
        if action in pending.rewarded or event.timestamp > pending.closes_at:
            return None
        pending.rewarded.add(action)
        if pending.seen is not None:
            pending.seen.add(action)  # a click on it: it was seen
        return BanditUpdate(pending.log.decision_id, action, reward, pending.log.context)

    def _expired(self, live: _Live, now: datetime) -> list[_Pending]:
        due = []
        while live.pending:
            decision_id, first = next(iter(live.pending.items()))
            if first.closes_at > now:
                break
            del live.pending[decision_id]
            due.append(first)
        return due

    def _close(self, tenant: str, point: str, live: _Live, due: Sequence[_Pending]) -> int:
        """Zero rewards for the closed decisions' actions that earned nothing (here); of a
        ``seen_only`` decision, only for the actions seen (here)."""
        zeros = [
            BanditUpdate(p.log.decision_id, a, 0.0, p.log.context)
            for p in due
            for a in p.log.chosen
            if a not in p.rewarded and (p.seen is None or a in p.seen)
        ]
        return self._claim(tenant, point, live, zeros)

    def _claim(self, tenant: str, point: str, live: _Live, updates: list[BanditUpdate]) -> int:
        """Store the updates in the shared log; apply the ones this process claimed first."""
        if not updates:
            return 0
        epoch = live.epoch
        claimed = self._updates.claim(
            tenant, point, epoch, updates, origin=self.origin, now=self._clock()
        )
        applied = 0
        with live.lock:
            if live.epoch == epoch:
                applied = sum(self._apply(live, row) for row in claimed)
        return applied

    @staticmethod
    def _apply(live: _Live, row: BanditUpdate) -> int:
        """Apply one log row to the live policy unless it holds it already (call locked)."""
        if row.id <= live.base_seq or row.id in live.applied:
            return 0
        live.policy.update(row.action, row.context, row.reward)
        live.applied.add(row.id)
        live.updates += 1
        return 1

    @staticmethod
    def _from_snapshot(record: DecisionPointRecord) -> tuple[BanditPolicy, int]:
        config = DecisionPointConfig.model_validate(record.config)
        if not record.state:
            return config.build(), 0
        return policy_from_dict(record.state), int(record.state.get("updates", 0))

    def _reload(self, tenant: str, point: str, live: _Live) -> int:
        """Rebuild the live policy from the stored snapshot and every newer log row."""
        record = self._points.get(tenant, point)
        if record is None:
            return 0
        policy, updates = self._from_snapshot(record)
        base = record.state_seq or 0
        read_at = self._clock()
        rows = self._updates.read(tenant, point, record.epoch, after=base)
        for row in rows:
            policy.update(row.action, row.context, row.reward)
        with live.lock:
            if record.epoch != live.epoch:  # reconfigured: start over
                live.config = DecisionPointConfig.model_validate(record.config)
                live.pending.clear()
                live.epoch = record.epoch
            live.policy = policy
            live.base_seq = base
            live.applied = {row.id for row in rows}
            live.seen = max(live.applied, default=base)
            live.read_at = read_at
            live.updates = updates + len(rows)
        return len(rows)

    def _get(self, tenant: str, point: str) -> _Live:
        with self._lock:
            live = self._live.get((tenant, point))
            if live is not None:
                return live
            record = self._points.get(tenant, point)
            if record is None:
                raise NotFound(
                    f"no decision point {point!r}",
                    field="point",
                    accepted=f"a configured point (POST /v1/decisions/{point} as admin first)",
                )
            config = DecisionPointConfig.model_validate(record.config)
            live = _Live(config, config.build(), record.epoch)
            self._reload(tenant, point, live)
            live.synced_at = time.monotonic()
            self._live[(tenant, point)] = live
            return live


def context_features(context: Mapping[str, Any]) -> dict[str, float | int | str | bool | None]:
    """Validate a context of named scalar features (what ``encode_context`` hashes)."""
    out: dict[str, float | int | str | bool | None] = {}
    for key, value in context.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidInput(
                f"context feature {key!r} is not a scalar",
                field=f"context.{key}",
                accepted="a number, string, boolean or null",
            )
        out[key] = value
    return out
