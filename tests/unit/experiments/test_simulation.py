from __future__ import annotations

import numpy as np

from personify.experiments.bandits import LinUCB
from personify.experiments.simulation import (
    SimulationConfig,
    aa_study,
    ab_test,
    bandit_regret,
    personalized_policy,
    popularity_policy,
    simulate,
    synthetic_world,
)


def test_personalized_beats_popularity_in_a_small_world() -> None:
    world = synthetic_world(n_users=500, n_items=60, seed=1)
    res = ab_test(
        world, popularity_policy, personalized_policy(0.3), 4000, np.random.default_rng(0)
    )
    assert res["ctr"].lift_ci[0] > 0
    assert res["conversion"].lift > 0


def test_aa_test_flags_about_alpha() -> None:
    world = synthetic_world(n_users=300, n_items=40, seed=2)
    rng = np.random.default_rng(0)
    hits = sum(
        ab_test(world, popularity_policy, popularity_policy, 600, rng, run=str(r))["ctr"].p_value
        < 0.05
        for r in range(120)
    )
    assert hits / 120 <= 0.11


def test_aa_study_pools_seeds_with_a_wilson_interval() -> None:
    world = synthetic_world(n_users=300, n_items=40, seed=2)
    out = aa_study(world, runs=40, units=400, seeds=[0, 1])
    per_seed = out["aa_study_per_seed"]
    assert set(per_seed) == {"0", "1"} and out["aa_study_runs"] == 80
    assert out["aa_study_rate"] == sum(s["rate"] for s in per_seed.values()) / 2
    for s in [*per_seed.values(), {"rate": out["aa_study_rate"], "wilson_low": out[
            "aa_study_wilson_low"], "wilson_high": out["aa_study_wilson_high"]}]:
        assert 0 <= s["wilson_low"] <= s["rate"] <= s["wilson_high"] <= 1
    # an unbiased test: the pooled interval holds alpha
    assert out["aa_study_alpha_inside"] is True


def test_linucb_has_less_regret_than_uniform() -> None:
    world = synthetic_world(n_users=300, n_items=40, seed=3)
    uniform = bandit_regret(world, None, rounds=1500, seed=0)
    learned = bandit_regret(world, lambda d: LinUCB(d, alpha=0.5, seed=0), rounds=1500, seed=0)
    assert learned < 0.9 * uniform


def test_simulate_reports_every_metric() -> None:
    world = synthetic_world(n_users=300, n_items=40, seed=4)
    out = simulate(
        SimulationConfig(
            aa_runs=5, power_runs=5, aa_units=500, compare_units=2000, bandit_rounds=200
        ),
        world=world,
    )
    for key in (
        "aa_false_positive_rate",
        "planted_lift_power",
        "ctr_lift",
        "ctr_lift_ci_low",
        "conversion_lift",
        "bandit_regret_ratio",
    ):
        assert np.isfinite(out[key]), key
    # the planted lift raises the treatment arm's CTR variance, and the sizing accounts for it
    assert out["planted_lift_variance_ratio"] > 1
