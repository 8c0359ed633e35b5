"""Off-policy evaluation: the value of an evaluation policy from logs of another policy.

Inputs are arrays over logged rounds: ``action`` (int), ``reward``, ``pscore`` (the logging
policy's probability of the logged action at the logged position), optional ``position`` and
``context``; plus ``action_dist`` of shape (n_rounds, n_actions): the evaluation policy's
probability of each action for that round (at the logged position). Each estimator returns a
point value and a normal-approximation interval over per-round contributions:

* IPS: mean of w r, with w = pi_e(a|x) / pscore (unbiased when pscore > 0 wherever pi_e > 0).
* SNIPS: sum(w r) / sum(w), interval by the delta method.
* DM: mean over rounds of sum_a pi_e(a|x) q(x, a) with a reward model q. The normal interval
  covers the sampling of rounds only; ``evaluate_policy`` widens it with the standard error
  of a bootstrap that refits the model on each resample (``dm_bootstrap``), which also covers
  the model's estimation error (not its misspecification bias).
* DR: DM plus w (r - q(x, a)); unbiased when either pscore or q is right.

``cross_fit_rewards`` fits the reward model out of fold so DR does not reuse its own residuals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import stats

from personify.domain.errors import InvalidInput


@dataclass(frozen=True)
class BanditLog:
    """Logged bandit feedback, one row per round."""

    action: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    n_actions: int
    context: np.ndarray | None = None
    position: np.ndarray | None = None
    n_positions: int = 1

    def __post_init__(self) -> None:
        n = len(self.action)
        for name in ("reward", "pscore"):
            if len(getattr(self, name)) != n:
                raise InvalidInput(f"{name} has a different length than action", field=name)
        if n and (np.min(self.pscore) <= 0 or np.max(self.pscore) > 1):
            raise InvalidInput("pscore must be in (0, 1]", field="pscore", accepted="(0, 1]")
        if n and (self.action.min() < 0 or self.action.max() >= self.n_actions):
            raise InvalidInput(
                "action out of range", field="action", accepted=f"0..{self.n_actions - 1}"
            )

    @property
    def n_rounds(self) -> int:
        return len(self.action)

    def subset(self, idx: np.ndarray) -> BanditLog:
        return BanditLog(
            self.action[idx],
            self.reward[idx],
            self.pscore[idx],
            self.n_actions,
            None if self.context is None else self.context[idx],
            None if self.position is None else self.position[idx],
            self.n_positions,
        )


@dataclass(frozen=True)
class Estimate:
    estimator: str
    value: float
    ci_low: float
    ci_high: float
    se: float
    n_rounds: int


def _check_dist(log: BanditLog, action_dist: np.ndarray) -> np.ndarray:
    dist = np.asarray(action_dist, dtype=float)
    if dist.shape != (log.n_rounds, log.n_actions):
        raise InvalidInput(
            f"action_dist has shape {dist.shape}",
            field="action_dist",
            accepted=f"({log.n_rounds}, {log.n_actions}): per round, per action",
        )
    return dist


def _normal(name: str, contrib: np.ndarray, alpha: float, value: float | None = None) -> Estimate:
    n = len(contrib)
    v = float(contrib.mean()) if value is None else value
    se = float(contrib.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    z = float(stats.norm.ppf(1 - alpha / 2))
    return Estimate(name, v, v - z * se, v + z * se, se, n)


def importance_weights(log: BanditLog, action_dist: np.ndarray) -> np.ndarray:
    dist = _check_dist(log, action_dist)
    return dist[np.arange(log.n_rounds), log.action] / log.pscore


def ips(log: BanditLog, action_dist: np.ndarray, *, alpha: float = 0.05) -> Estimate:
    """Inverse propensity scoring."""
    w = importance_weights(log, action_dist)
    return _normal("ips", w * log.reward, alpha)


def snips(log: BanditLog, action_dist: np.ndarray, *, alpha: float = 0.05) -> Estimate:
    """Self-normalized IPS with a delta-method interval."""
    w = importance_weights(log, action_dist)
    if w.sum() == 0:
        return Estimate("snips", math.nan, math.nan, math.nan, math.nan, log.n_rounds)
    value = float((w * log.reward).sum() / w.sum())
    return _normal("snips", w * (log.reward - value) / w.mean() + value, alpha, value)


def direct_method(
    log: BanditLog, action_dist: np.ndarray, estimated_rewards: np.ndarray, *, alpha: float = 0.05
) -> Estimate:
    """Direct method: ``estimated_rewards`` has shape (n_rounds, n_actions)."""
    dist = _check_dist(log, action_dist)
    q = np.asarray(estimated_rewards, dtype=float)
    if q.shape != dist.shape:
        raise InvalidInput("estimated_rewards must match action_dist", field="estimated_rewards")
    return _normal("dm", (dist * q).sum(axis=1), alpha)


def doubly_robust(
    log: BanditLog, action_dist: np.ndarray, estimated_rewards: np.ndarray, *, alpha: float = 0.05
) -> Estimate:
    """Doubly robust: DM baseline plus the importance-weighted residual of the logged action."""
    dist = _check_dist(log, action_dist)
    q = np.asarray(estimated_rewards, dtype=float)
    w = dist[np.arange(log.n_rounds), log.action] / log.pscore
    q_logged = q[np.arange(log.n_rounds), log.action]
    return _normal("dr", (dist * q).sum(axis=1) + w * (log.reward - q_logged), alpha)


class RewardModel(Protocol):
    """q(x, a) for every action at each round's logged position, shape (n, n_actions)."""

    def fit(self, log: BanditLog) -> RewardModel: ...

    def predict(self, log: BanditLog) -> np.ndarray: ...


class ActionMeanReward:
    """q(x, a) = smoothed mean reward of (action, position); ignores the context."""

    def __init__(self, prior_strength: float = 1.0) -> None:
        self.prior_strength = prior_strength

    def fit(self, log: BanditLog) -> ActionMeanReward:
        pos = log.position if log.position is not None else np.zeros(log.n_rounds, dtype=int)
        key = pos * log.n_actions + log.action
        size = log.n_positions * log.n_actions
        sums = np.bincount(key, weights=log.reward, minlength=size)
        counts = np.bincount(key, minlength=size)
        base = float(log.reward.mean()) if log.n_rounds else 0.0
        self.table_ = (
            (sums + self.prior_strength * base) / (counts + self.prior_strength)
        ).reshape(log.n_positions, log.n_actions)
        return self

    def predict(self, log: BanditLog) -> np.ndarray:
        pos = log.position if log.position is not None else np.zeros(log.n_rounds, dtype=int)
        out: np.ndarray = self.table_[pos]
        return out


class LogisticReward:
    """q(x, a) from one L2 logistic regression on [context, one-hot action, one-hot position]."""

    def __init__(self, c: float = 1.0, max_iter: int = 200) -> None:
        self.c = c
        self.max_iter = max_iter

    def _design(self, log: BanditLog, actions: np.ndarray) -> np.ndarray:
        n = log.n_rounds
        ctx = log.context if log.context is not None else np.zeros((n, 0))
        pos = log.position if log.position is not None else np.zeros(n, dtype=int)
        onehot_a = np.zeros((n, log.n_actions))
        onehot_a[np.arange(n), actions] = 1.0
        onehot_p = np.zeros((n, log.n_positions))
        onehot_p[np.arange(n), pos] = 1.0
        return np.hstack([ctx, onehot_a, onehot_p])

    def fit(self, log: BanditLog) -> LogisticReward:
        from sklearn.linear_model import LogisticRegression

        y = (log.reward > 0).astype(int)
        if y.min() == y.max():
            self.constant_: float | None = float(y[0]) if len(y) else 0.0
            return self
        self.constant_ = None
        self.model_ = LogisticRegression(C=self.c, max_iter=self.max_iter)
        self.model_.fit(self._design(log, log.action), y)
        return self

    def predict(self, log: BanditLog) -> np.ndarray:
        if self.constant_ is not None:
            return np.full((log.n_rounds, log.n_actions), self.constant_)
        out = np.empty((log.n_rounds, log.n_actions))
        for a in range(log.n_actions):
            actions = np.full(log.n_rounds, a)
            out[:, a] = self.model_.predict_proba(self._design(log, actions))[:, 1]
        return out


def cross_fit_rewards(
    log: BanditLog,
    make_model: Callable[[], RewardModel],
    *,
    n_folds: int = 2,
    seed: int = 0,
) -> np.ndarray:
    """Out-of-fold q(x, a): each round's prediction comes from a model fitted on the other folds."""
    if n_folds < 2:
        return make_model().fit(log).predict(log)
    folds = np.random.default_rng(seed).permutation(log.n_rounds) % n_folds
    q = np.empty((log.n_rounds, log.n_actions))
    for f in range(n_folds):
        train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        q[test] = make_model().fit(log.subset(train)).predict(log.subset(test))
    return q


ESTIMATORS: tuple[str, ...] = ("ips", "snips", "dm", "dr")


def evaluate_policy(
    log: BanditLog,
    action_dist: np.ndarray,
    *,
    make_model: Callable[[], RewardModel] = ActionMeanReward,
    estimators: Sequence[str] = ESTIMATORS,
    alpha: float = 0.05,
    n_folds: int = 2,
    seed: int = 0,
    dm_bootstrap: int = 200,
) -> list[Estimate]:
    """Run the named estimators; DM and DR share one cross-fitted reward model; the DM interval
    uses the bootstrap standard error of a refitted model (``dm_bootstrap`` resamples; 0: off)."""
    unknown = set(estimators) - set(ESTIMATORS)
    if unknown:
        raise InvalidInput(
            f"unknown estimators {sorted(unknown)}",
            field="estimators",
            accepted=", ".join(ESTIMATORS),
        )
    q = None
    if {"dm", "dr"} & set(estimators):
        q = cross_fit_rewards(log, make_model, n_folds=n_folds, seed=seed)
    out: list[Estimate] = []
    for name in estimators:
        if name == "ips":
            out.append(ips(log, action_dist, alpha=alpha))
        elif name == "snips":
            out.append(snips(log, action_dist, alpha=alpha))
        elif name == "dm" and q is not None:
            est = direct_method(log, action_dist, q, alpha=alpha)
            if dm_bootstrap > 0:
                est = _bootstrap_dm(log, action_dist, est, make_model, dm_bootstrap, alpha, seed)
            out.append(est)
        elif name == "dr" and q is not None:
            out.append(doubly_robust(log, action_dist, q, alpha=alpha))
    return out


def _bootstrap_dm(
    log: BanditLog,
    action_dist: np.ndarray,
    est: Estimate,
    make_model: Callable[[], RewardModel],
    n_bootstrap: int,
    alpha: float,
    seed: int,
) -> Estimate:
    rng = np.random.default_rng(seed + 1)
    dist = _check_dist(log, action_dist)
    values = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        idx = rng.integers(0, log.n_rounds, size=log.n_rounds)
        sub = log.subset(idx)
        values[b] = float((dist[idx] * make_model().fit(sub).predict(sub)).sum(axis=1).mean())
    se = float(values.std(ddof=1))
    z = float(stats.norm.ppf(1 - alpha / 2))
    return Estimate("dm", est.value, est.value - z * se, est.value + z * se, se, est.n_rounds)
