from __future__ import annotations

import numpy as np
import pytest

from personify.domain.errors import InvalidInput
from personify.experiments.ope import (
    ActionMeanReward,
    BanditLog,
    LogisticReward,
    evaluate_policy,
    ips,
)

N_ACTIONS = 5


def synthetic(seed: int, n: int = 2000) -> tuple[BanditLog, np.ndarray, float]:
    """Logs of a softmax logging policy over contexts; the evaluation policy prefers other arms.
    Returns (log, evaluation action_dist, true value of the evaluation policy)."""
    rng = np.random.default_rng(seed)
    base = np.array([0.1, 0.2, 0.3, 0.15, 0.25])
    context = rng.integers(0, 2, n)
    q = np.clip(base[None, :] + 0.1 * context[:, None] * np.array([1, -1, 0, 1, -1]), 0, 1)
    logit = np.array([1.0, 0.5, 0.0, -0.5, 0.2])
    behaviour = np.exp(logit) / np.exp(logit).sum()
    evaluation = np.array([0.05, 0.1, 0.5, 0.05, 0.3])
    action = rng.choice(N_ACTIONS, size=n, p=behaviour)
    reward = (rng.random(n) < q[np.arange(n), action]).astype(float)
    log = BanditLog(
        action, reward, behaviour[action], N_ACTIONS, context=context[:, None].astype(float)
    )
    # contexts are Bernoulli(0.5): the expected q per action is base + 0.05 * direction
    true_value = float((base + 0.05 * np.array([1, -1, 0, 1, -1])) @ evaluation)
    return log, np.tile(evaluation, (n, 1)), true_value


def test_estimators_cover_the_true_value_over_200_seeds() -> None:
    covered = {"ips": 0, "snips": 0, "dm": 0, "dr": 0}
    ips_values = []
    for seed in range(200):
        log, dist, truth = synthetic(seed)
        for e in evaluate_policy(
            log, dist, make_model=ActionMeanReward, dm_bootstrap=30, seed=seed
        ):
            covered[e.estimator] += e.ci_low <= truth <= e.ci_high
            if e.estimator == "ips":
                ips_values.append(e.value)
    for name, hits in covered.items():
        assert 0.89 <= hits / 200 <= 0.995, (name, hits)
    # unbiased: the mean of 200 IPS estimates is within 3 standard errors of the truth
    se = np.std(ips_values, ddof=1) / np.sqrt(len(ips_values))
    assert abs(np.mean(ips_values) - truth) < 3 * se


def test_biased_propensities_break_ips_coverage() -> None:
    """Guards the test above against a tautology: wrong propensities must show up."""
    covered = 0
    for seed in range(100):
        log, dist, truth = synthetic(seed)
        wrong = BanditLog(log.action, log.reward, np.full(log.n_rounds, 0.2), N_ACTIONS)
        e = ips(wrong, dist)
        covered += e.ci_low <= truth <= e.ci_high
    assert covered / 100 < 0.5


def test_logistic_reward_model_and_validation() -> None:
    log, dist, truth = synthetic(0, n=3000)
    (dr,) = evaluate_policy(log, dist, make_model=LogisticReward, estimators=["dr"])
    assert dr.ci_low <= truth <= dr.ci_high
    with pytest.raises(InvalidInput) as err:
        ips(log, dist[:, :3])
    assert err.value.field == "action_dist"
    with pytest.raises(InvalidInput):
        BanditLog(np.array([0]), np.array([1.0]), np.array([0.0]), 2)
