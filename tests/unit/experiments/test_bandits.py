from __future__ import annotations

import numpy as np
import pytest

from personify.domain.errors import InvalidInput
from personify.domain.events import Event
from personify.experiments.bandits import (
    BernoulliThompson,
    DecisionLog,
    LinearThompson,
    LinUCB,
    apply_rewards,
    encode_context,
    policy_from_dict,
    rewards_from_events,
)


def test_epsilon_greedy_propensities_are_exact() -> None:
    policy = LinUCB(dim=3, epsilon=0.3, seed=0)
    for _ in range(50):
        policy.update("best", [1, 0, 0], 1.0)
    actions = ["best", "b", "c", "d"]
    picks = [policy.choose([1, 0, 0], actions, k=2) for _ in range(4000)]
    first = [d.ranked[0] for d in picks]
    assert first.count("best") / 4000 == pytest.approx(0.7 + 0.3 / 4, abs=0.02)
    for d in picks[:50]:
        expected0 = 0.7 + 0.075 if d.ranked[0] == "best" else 0.075
        assert d.propensities[0] == pytest.approx(expected0)
        assert 0 < d.propensities[1] <= 1


def test_thompson_monte_carlo_propensity_matches_frequency() -> None:
    policy = BernoulliThompson(seed=1)
    for _ in range(6):
        policy.update("a", {}, 1.0)
        policy.update("b", {}, 0.0)
    picks = [policy.choose({}, ["a", "b", "c"], n_draws=400) for _ in range(3000)]
    freq_a = sum(d.ranked[0] == "a" for d in picks) / 3000
    mean_prop_a = np.mean([d.propensities[0] for d in picks if d.ranked[0] == "a"])
    assert mean_prop_a == pytest.approx(freq_a, abs=0.04)


@pytest.mark.parametrize(
    "factory",
    [lambda: LinUCB(dim=4, alpha=0.5, seed=0), lambda: LinearThompson(dim=4, v=0.2, seed=0)],
)
def test_linear_policies_learn_contextual_best_arm(factory) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    policy = factory()
    theta = {"a": np.array([0.1, 0.8, 0, 0]), "b": np.array([0.1, 0, 0.8, 0])}
    hits = 0
    for t in range(1500):
        x = np.array([1.0, *np.eye(3)[rng.integers(0, 2)]])
        d = policy.choose(x, ["a", "b"], n_draws=50)
        best = max(theta, key=lambda a: float(theta[a] @ x))
        hits += t >= 1000 and d.ranked[0] == best
        policy.update(d.ranked[0], x, float(rng.random() < theta[d.ranked[0]] @ x))
    assert hits / 500 > 0.85


def test_serialization_round_trip() -> None:
    for policy in (
        LinUCB(dim=3, alpha=0.7, epsilon=0.1),
        LinearThompson(dim=3),
        BernoulliThompson(),
    ):
        policy.update("a", [1, 2, 3], 1.0)
        clone = policy_from_dict(policy.to_dict())
        assert clone.to_dict() == policy.to_dict()
    with pytest.raises(InvalidInput):
        policy_from_dict({"kind": "nope"})


def test_choose_validates_inputs() -> None:
    policy = LinUCB(dim=3)
    with pytest.raises(InvalidInput) as err:
        policy.choose([1, 2], ["a"])
    assert err.value.field == "context"
    with pytest.raises(InvalidInput):
        policy.choose([1, 2, 3], ["a", "b"], k=3)


def test_hashed_context_is_stable() -> None:
    x = encode_context({"device": "mobile", "hour": 3.0}, 16)
    assert x[0] == 1.0 and x.sum() == pytest.approx(5.0)
    assert np.array_equal(x, encode_context({"hour": 3.0, "device": "mobile"}, 16))


def test_rewards_attributed_from_events() -> None:
    policy = LinUCB(dim=3)
    d = policy.choose([1, 0, 1], ["a", "b", "c"], k=2, decision_id="dec-1")
    log = d.log(np.array([1.0, 0, 1]), ["a", "b", "c"], policy.name)
    assert DecisionLog.from_dict(log.to_dict()) == log
    click = Event(
        event_id="e",
        type="click",
        user_id="u",
        item_id=d.ranked[1],
        recommendation_id="dec-1",
        timestamp="2024-01-01T00:00:00Z",
    )
    rewards = rewards_from_events(log, [click])
    assert rewards == {d.ranked[0]: 0.0, d.ranked[1]: 1.0}
    assert apply_rewards(policy, log, rewards) == 2
    assert policy.b_[d.ranked[1]].sum() == pytest.approx(2.0)
