"""Named bandit decision points: one live policy per (tenant, point) in this process, decisions
logged with propensities, rewards attributed from ingested events.

Reward attribution: an event whose ``recommendation_id`` is a decision id, whose type is one of
the point's ``reward_types`` and whose ``item_id`` is a chosen action updates the policy at once
(the first such event per action counts). A decision *closes* ``reward_window_seconds`` after it
was made: its chosen actions that earned nothing are then updated with reward 0, so the policy
learns from misses too. Rewards after the window are ignored (they would count the round twice).

Policies learn in the process that sees the events; the learned state is saved with the point
after every update and reloaded on first use, so a restart keeps what was learned. Several
workers each learn from the rewards they ingest and the last save wins: run decision points in
one worker for exact learning.
"""

from __future__ import annotations

import logging
import threading
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
from personify.storage.sql.experiments import SqlDecisionPointStore

log = logging.getLogger(__name__)

DECISION_ID_PREFIX = "dec-"
"""Decision ids start with this, so the reward listener skips other recommendation ids cheaply."""
MAX_PENDING = 100_000
"""Open decisions kept per point; the oldest are closed early beyond this."""


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


@dataclass
class _Live:
    config: DecisionPointConfig
    policy: BanditPolicy
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: OrderedDict[str, _Pending] = field(default_factory=OrderedDict)
    updates: int = 0


@dataclass(frozen=True)
class DecisionOutcome:
    """A decision as the API returns it."""

    point: str
    decision: Decision
    log: DecisionLog
    policy: str


class DecisionPoints:
    """The live policies of this process, backed by the point store and the decision log."""

    def __init__(
        self,
        points: SqlDecisionPointStore,
        decisions: DecisionLogStore,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._points = points
        self._decisions = decisions
        self._clock = clock
        self._live: dict[tuple[str, str], _Live] = {}
        self._lock = threading.Lock()

    def configure(self, tenant: str, point: str, config: DecisionPointConfig) -> None:
        """Create or replace a point; a new configuration starts learning from scratch."""
        self._points.save_config(tenant, point, config.model_dump(mode="json"))
        with self._lock:
            self._live[(tenant, point)] = _Live(config, config.build())

    def describe(self, tenant: str, point: str) -> dict[str, Any]:
        """The configuration and a summary of what the live policy has learned."""
        live = self._get(tenant, point)
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
    ) -> DecisionOutcome:
        """Rank ``k`` of ``actions`` and log the decision (with its propensities)."""
        live = self._get(tenant, point)
        now = self._clock()
        with live.lock:
            changed = self._close_expired(live, now)
            decision = live.policy.choose(
                context, actions, k, decision_id=f"{DECISION_ID_PREFIX}{uuid.uuid4().hex}"
            )
            # logged even for the context-free Bernoulli policy: OPE may use it
            record = decision.log(encode_context(context, live.config.dim), actions, point)
            record.timestamp = now
            live.pending[decision.decision_id] = _Pending(
                record, now + timedelta(seconds=live.config.reward_window_seconds)
            )
            while len(live.pending) > MAX_PENDING:
                _, oldest = live.pending.popitem(last=False)
                changed += self._close(live, oldest)
            state = live.policy.to_dict() if changed else None
        self._decisions.record(tenant, record)
        if state is not None:
            self._points.save_state(tenant, point, state)
        return DecisionOutcome(point, decision, record, live.config.policy)

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
        touched: set[str] = set()
        for event in candidates:
            try:
                point = self._reward(tenant, event)
            except Exception:  # a bad reward never fails ingestion
                log.exception("could not attribute reward of event %s", event.event_id)
                continue
            if point is not None:
                touched.add(point)
        for point in touched:
            live = self._get(tenant, point)
            with live.lock:
                state = live.policy.to_dict()
            self._points.save_state(tenant, point, state)

    def close_expired(self, tenant: str, point: str) -> int:
        """Close the point's decisions whose reward window has passed; returns updates made."""
        live = self._get(tenant, point)
        with live.lock:
            changed = self._close_expired(live, self._clock())
            state = live.policy.to_dict() if changed else None
        if state is not None:
            self._points.save_state(tenant, point, state)
        return changed

    def _reward(self, tenant: str, event: Event) -> str | None:
        assert event.recommendation_id is not None and event.item_id is not None
        decision_id = event.recommendation_id
        for (t, point), live in list(self._live.items()):
            if t == tenant and decision_id in live.pending:
                with live.lock:
                    pending = live.pending.get(decision_id)
                    if pending is not None and self._apply(live, pending, event):
                        return point
                return None
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
            pending = live.pending.setdefault(decision_id, _Pending(record, closes_at))
            return record.policy if self._apply(live, pending, event) else None

    def _apply(self, live: _Live, pending: _Pending, event: Event) -> bool:
        reward = live.config.reward_types.get(event.type)
        action = event.item_id
        if reward is None or action is None or action not in pending.log.chosen:
            return False
        if action in pending.rewarded or event.timestamp > pending.closes_at:
            return False
        live.policy.update(action, pending.log.context, reward)
        pending.rewarded.add(action)
        live.updates += 1
        return True

    def _close_expired(self, live: _Live, now: datetime) -> int:
        changed = 0
        while live.pending:
            decision_id, first = next(iter(live.pending.items()))
            if first.closes_at > now:
                break
            del live.pending[decision_id]
            changed += self._close(live, first)
        return changed

    def _close(self, live: _Live, pending: _Pending) -> int:
        missed = [a for a in pending.log.chosen if a not in pending.rewarded]
        for action in missed:
            live.policy.update(action, pending.log.context, 0.0)
        live.updates += len(missed)
        return len(missed)

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
            policy = policy_from_dict(record.state) if record.state else config.build()
            live = _Live(config, policy)
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
