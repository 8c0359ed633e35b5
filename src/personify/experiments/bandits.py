"""Contextual bandits for small action sets: LinUCB, linear and Bernoulli Thompson sampling.

Every policy ranks a slate with :meth:`BanditPolicy.choose` and returns, for each position, the
propensity of its choice *given the actions placed before it* (their product is the slate's
probability):

* LinUCB is deterministic, so with epsilon exploration the propensity is exact:
  ``eps / |remaining| + (1 - eps) * [action is the UCB argmax]``.
* Thompson policies draw a fresh posterior sample per position; the probability that an action is
  the sampled argmax is estimated by Monte-Carlo over ``n_draws`` extra samples (the draw actually
  used is counted too, so a logged propensity is never 0), then mixed with epsilon the same way.

Rewards come back through :meth:`BanditPolicy.update`, or from events whose
``recommendation_id`` is a :class:`DecisionLog`'s ``decision_id`` (:func:`rewards_from_events`).
"""

from __future__ import annotations

import hashlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from personify.domain.errors import InvalidInput
from personify.domain.events import Event

ContextInput = Mapping[str, float | int | str | bool | None] | Sequence[float] | np.ndarray


def encode_context(context: ContextInput, dim: int) -> np.ndarray:
    """A feature vector of length ``dim``: arrays pass through (length checked); a mapping is
    hashed (``name`` for numbers, ``name=value`` for strings) into ``dim - 1`` slots plus a bias."""
    if isinstance(context, Mapping):
        x = np.zeros(dim)
        x[0] = 1.0
        for key, value in context.items():
            if value is None:
                continue
            if isinstance(value, str):
                slot_key, amount = f"{key}={value}", 1.0
            else:
                slot_key, amount = key, float(value)
            h = int.from_bytes(hashlib.sha256(slot_key.encode()).digest()[:8], "big")
            x[1 + h % (dim - 1)] += amount
        return x
    arr = np.asarray(context, dtype=float).ravel()
    if arr.shape != (dim,):
        raise InvalidInput(
            f"context has {arr.size} features, the policy expects {dim}",
            field="context",
            accepted=f"{dim} numbers or a mapping of features",
        )
    return arr


@dataclass
class DecisionLog:
    """What a policy decided, so a reward arriving later (an event with ``recommendation_id ==
    decision_id``) can be attributed, and so OPE can reuse the log."""

    decision_id: str
    context: list[float]
    actions: list[str]
    chosen: list[str]
    propensities: list[float]
    policy: str
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    seen_only: bool = False
    """Only the chosen actions reported *seen* (or rewarded) count as shown: the others earn
    no zero when the reward window closes (a page's rows below the fold)."""

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["timestamp"] = self.timestamp.isoformat()
        return body

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionLog:
        body = dict(data)
        body["timestamp"] = datetime.fromisoformat(str(body["timestamp"]))
        return cls(**body)


@dataclass(frozen=True)
class Decision:
    """A ranked slate with each position's propensity and the policy's score for it."""

    decision_id: str
    ranked: list[str]
    propensities: list[float]
    scores: list[float]

    def log(self, context: np.ndarray, actions: Sequence[str], policy: str) -> DecisionLog:
        return DecisionLog(
            self.decision_id,
            [float(v) for v in context],
            list(actions),
            list(self.ranked),
            list(self.propensities),
            policy,
        )


class BanditPolicy(ABC):
    """Base: ``choose`` a slate, ``update`` with a reward, ``to_dict`` / ``from_dict``.

    >>> policy = LinUCB(dim=4, alpha=1.0)
    >>> d = policy.choose([1, 0, 0, 1], ["a", "b", "c"], k=2)
    >>> policy.update(d.ranked[0], [1, 0, 0, 1], reward=1.0)
    """

    kind = "base"

    def __init__(self, *, epsilon: float = 0.0, seed: int | None = None) -> None:
        if not 0 <= epsilon <= 1:
            raise InvalidInput("epsilon must be in [0, 1]", field="epsilon", accepted="[0, 1]")
        self.epsilon = epsilon
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    @property
    def name(self) -> str:
        return self.kind

    @abstractmethod
    def _encode(self, context: ContextInput) -> np.ndarray: ...

    @abstractmethod
    def _mean_scores(self, x: np.ndarray, actions: Sequence[str]) -> np.ndarray:
        """The score a deterministic policy ranks by (Thompson: the posterior mean)."""

    def _sample_scores(self, x: np.ndarray, actions: Sequence[str], size: int) -> np.ndarray | None:
        """``size`` posterior score samples, shape (size, n_actions); None if deterministic."""
        return None

    @abstractmethod
    def update(self, action: str, context: ContextInput, reward: float) -> None: ...

    @abstractmethod
    def to_dict(self) -> dict[str, Any]: ...

    def mean_scores(self, context: ContextInput, actions: Sequence[str]) -> list[float]:
        """What the policy expects of each action in this context (no exploration, no log)."""
        return [float(v) for v in self._mean_scores(self._encode(context), actions)]

    def choose(
        self,
        context: ContextInput,
        actions: Sequence[str],
        k: int = 1,
        *,
        decision_id: str | None = None,
        n_draws: int = 500,
    ) -> Decision:
        """Rank ``k`` of ``actions`` for this context with per-position propensities."""
        if not actions:
            raise InvalidInput("actions must not be empty", field="actions", accepted=">= 1 action")
        if len(set(actions)) != len(actions):
            raise InvalidInput("actions must be unique", field="actions")
        if not 1 <= k <= len(actions):
            raise InvalidInput(
                f"k must be in 1..{len(actions)}", field="k", accepted=f"1..{len(actions)}"
            )
        x = self._encode(context)
        means = self._mean_scores(x, actions)
        remaining = list(range(len(actions)))
        ranked: list[str] = []
        props: list[float] = []
        scores: list[float] = []
        for _ in range(k):
            draws = self._sample_scores(x, actions, n_draws + 1)
            explore = self.epsilon > 0 and self._rng.random() < self.epsilon
            rem = np.array(remaining)
            if draws is None:
                greedy = int(rem[np.argmax(means[rem])])
                pick = int(self._rng.choice(rem)) if explore else greedy
                p_greedy = 1.0 if pick == greedy else 0.0
            else:
                winners = rem[np.argmax(draws[:, rem], axis=1)]
                pick = int(self._rng.choice(rem)) if explore else int(winners[0])
                p_greedy = float(np.mean(winners == pick))
            props.append(self.epsilon / len(rem) + (1 - self.epsilon) * p_greedy)
            ranked.append(actions[pick])
            scores.append(float(means[pick]))
            remaining.remove(pick)
        return Decision(decision_id or uuid.uuid4().hex, ranked, props, scores)


class _LinearArms(BanditPolicy):
    """Disjoint linear arms: per action A^-1 (kept by Sherman–Morrison) and b."""

    def __init__(
        self, dim: int, *, l2: float = 1.0, epsilon: float = 0.0, seed: int | None = None
    ) -> None:
        super().__init__(epsilon=epsilon, seed=seed)
        if dim < 2:
            raise InvalidInput("dim must be at least 2", field="dim", accepted=">= 2")
        self.dim = dim
        self.l2 = l2
        self.a_inv_: dict[str, np.ndarray] = {}
        self.b_: dict[str, np.ndarray] = {}

    def _encode(self, context: ContextInput) -> np.ndarray:
        return encode_context(context, self.dim)

    def _arm(self, action: str) -> tuple[np.ndarray, np.ndarray]:
        if action not in self.a_inv_:
            self.a_inv_[action] = np.eye(self.dim) / self.l2
            self.b_[action] = np.zeros(self.dim)
        return self.a_inv_[action], self.b_[action]

    def _posterior(self, x: np.ndarray, actions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per action: x . theta and x A^-1 x."""
        mean = np.empty(len(actions))
        var = np.empty(len(actions))
        for i, a in enumerate(actions):
            a_inv, b = self.a_inv_.get(a), self.b_.get(a)
            if a_inv is None or b is None:
                mean[i], var[i] = 0.0, float(x @ x) / self.l2
            else:
                ax = a_inv @ x
                mean[i], var[i] = float(ax @ b), float(x @ ax)
        return mean, np.maximum(var, 0.0)

    def update(self, action: str, context: ContextInput, reward: float) -> None:
        x = self._encode(context)
        a_inv, b = self._arm(action)
        ax = a_inv @ x
        a_inv -= np.outer(ax, ax) / (1.0 + float(x @ ax))
        b += reward * x

    def _state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dim": self.dim,
            "l2": self.l2,
            "epsilon": self.epsilon,
            "seed": self.seed,
            "arms": {
                a: {"a_inv": m.tolist(), "b": self.b_[a].tolist()} for a, m in self.a_inv_.items()
            },
        }

    def _load_arms(self, arms: Mapping[str, Any]) -> None:
        for a, body in arms.items():
            self.a_inv_[a] = np.asarray(body["a_inv"], dtype=float)
            self.b_[a] = np.asarray(body["b"], dtype=float)


class LinUCB(_LinearArms):
    """Disjoint LinUCB (Li et al. 2010): score = x.theta_a + alpha sqrt(x A_a^-1 x)."""

    kind = "linucb"

    def __init__(
        self,
        dim: int,
        *,
        alpha: float = 1.0,
        l2: float = 1.0,
        epsilon: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(dim, l2=l2, epsilon=epsilon, seed=seed)
        self.alpha = alpha

    def _mean_scores(self, x: np.ndarray, actions: Sequence[str]) -> np.ndarray:
        mean, var = self._posterior(x, actions)
        return mean + self.alpha * np.sqrt(var)

    def to_dict(self) -> dict[str, Any]:
        return {**self._state(), "alpha": self.alpha}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinUCB:
        p = cls(
            data["dim"],
            alpha=data["alpha"],
            l2=data["l2"],
            epsilon=data["epsilon"],
            seed=data.get("seed"),
        )
        p._load_arms(data["arms"])
        return p


class LinearThompson(_LinearArms):
    """Linear Thompson sampling with disjoint arms: score ~ N(x.theta_a, v^2 x A_a^-1 x)."""

    kind = "linear_thompson"

    def __init__(
        self,
        dim: int,
        *,
        v: float = 0.5,
        l2: float = 1.0,
        epsilon: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(dim, l2=l2, epsilon=epsilon, seed=seed)
        self.v = v

    def _mean_scores(self, x: np.ndarray, actions: Sequence[str]) -> np.ndarray:
        return self._posterior(x, actions)[0]

    def _sample_scores(self, x: np.ndarray, actions: Sequence[str], size: int) -> np.ndarray:
        mean, var = self._posterior(x, actions)
        return mean + self.v * np.sqrt(var) * self._rng.standard_normal((size, len(actions)))

    def to_dict(self) -> dict[str, Any]:
        return {**self._state(), "v": self.v}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinearThompson:
        p = cls(
            data["dim"], v=data["v"], l2=data["l2"], epsilon=data["epsilon"], seed=data.get("seed")
        )
        p._load_arms(data["arms"])
        return p


class BernoulliThompson(BanditPolicy):
    """Beta-Bernoulli Thompson sampling for non-contextual arms (context is ignored)."""

    kind = "bernoulli_thompson"

    def __init__(
        self,
        *,
        prior: tuple[float, float] = (1.0, 1.0),
        epsilon: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(epsilon=epsilon, seed=seed)
        self.prior = prior
        self.alpha_: dict[str, float] = {}
        self.beta_: dict[str, float] = {}

    def _encode(self, context: ContextInput) -> np.ndarray:
        return np.zeros(1)

    def _params(self, actions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        a = np.array([self.alpha_.get(x, self.prior[0]) for x in actions])
        b = np.array([self.beta_.get(x, self.prior[1]) for x in actions])
        return a, b

    def _mean_scores(self, x: np.ndarray, actions: Sequence[str]) -> np.ndarray:
        a, b = self._params(actions)
        return a / (a + b)

    def _sample_scores(self, x: np.ndarray, actions: Sequence[str], size: int) -> np.ndarray:
        a, b = self._params(actions)
        return self._rng.beta(a, b, size=(size, len(actions)))

    def update(self, action: str, context: ContextInput, reward: float) -> None:
        r = min(max(float(reward), 0.0), 1.0)
        self.alpha_[action] = self.alpha_.get(action, self.prior[0]) + r
        self.beta_[action] = self.beta_.get(action, self.prior[1]) + 1 - r

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "prior": list(self.prior),
            "epsilon": self.epsilon,
            "seed": self.seed,
            "alpha": dict(self.alpha_),
            "beta": dict(self.beta_),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BernoulliThompson:
        p = cls(
            prior=(data["prior"][0], data["prior"][1]),
            epsilon=data["epsilon"],
            seed=data.get("seed"),
        )
        p.alpha_ = {k: float(v) for k, v in data["alpha"].items()}
        p.beta_ = {k: float(v) for k, v in data["beta"].items()}
        return p


_KINDS: dict[str, Any] = {
    LinUCB.kind: LinUCB,
    LinearThompson.kind: LinearThompson,
    BernoulliThompson.kind: BernoulliThompson,
}


def policy_from_dict(data: Mapping[str, Any]) -> BanditPolicy:
    """Rebuild any policy saved with ``to_dict``."""
    kind = data.get("kind")
    if kind not in _KINDS:
        raise InvalidInput(
            f"unknown policy kind {kind!r}", field="kind", accepted=", ".join(_KINDS)
        )
    policy: BanditPolicy = _KINDS[kind].from_dict(data)
    return policy


def rewards_from_events(
    decision: DecisionLog,
    events: Iterable[Event],
    reward_types: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The reward of each chosen action: the largest value among events of ``reward_types``
    (default click = 1) whose ``recommendation_id`` is the decision id; 0 when none."""
    weights = dict(reward_types) if reward_types is not None else {"click": 1.0}
    rewards = dict.fromkeys(decision.chosen, 0.0)
    for e in events:
        if (
            e.recommendation_id == decision.decision_id
            and e.item_id in rewards
            and e.type in weights
        ):
            rewards[e.item_id] = max(rewards[e.item_id], weights[e.type])
    return rewards


def apply_rewards(policy: BanditPolicy, decision: DecisionLog, rewards: Mapping[str, float]) -> int:
    """Update the policy once per chosen action of a closed decision; returns how many updates."""
    for action in decision.chosen:
        policy.update(action, decision.context, float(rewards.get(action, 0.0)))
    return len(decision.chosen)
