"""The served configuration chosen on the deployment's own events: the one-standard-error
choice, the selector on planted data, reuse on retrain, the manifest's table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from personify.algorithms import create_model
from personify.domain.events import Event
from personify.evaluation.protocol import evaluate
from personify.jobs.selection import (
    SelectionPlan,
    Trial,
    changed_enough,
    default_budget_seconds,
    one_se_choice,
    select_configuration,
)
from personify.jobs.training import TrainingConfig, train_bundle
from personify.testing.algorithm_contracts import planted_split

pytest.importorskip("optuna")


def _trial(model: str, cost: float) -> Trial:
    return Trial(model, {}, "complete", fit_seconds=cost)


def test_one_standard_error_rule_takes_the_cheapest_within_noise_of_the_best() -> None:
    rng = np.random.default_rng(0)
    best = rng.random(400).astype(np.float32)
    noise = rng.normal(0, 0.3, 400)
    noisy_close = (best + noise - noise.mean() - 0.005).astype(np.float32)  # 0.005 +- 0.015
    clearly_worse = (best - 0.05).astype(np.float32)  # the same people, 0.05 lower each
    trials = [_trial("expensive", 100.0), _trial("cheap", 1.0), _trial("cheapest", 0.1)]
    per_user = {0: best, 1: noisy_close, 2: clearly_worse}
    assert one_se_choice(trials, per_user) == (0, 1)
    # without the close cheap one, the best stands: 0.05 on every person is not noise
    assert one_se_choice(trials, {0: best, 2: clearly_worse}) == (0, 0)
    # pruned or failed trials are never chosen
    trials[1].status = "pruned"
    assert one_se_choice(trials, {0: best, 2: clearly_worse}) == (0, 0)


def test_selector_chooses_a_model_that_wins_on_held_out_test_data() -> None:
    split = planted_split(n_users=400, n_items=200, per_user=14)
    chosen = select_configuration(split.train, budget_seconds=6.0, subsample_users=60,
                                  models=["rp3beta", "itemknn", "ease", "bspm"])
    assert chosen.protocol == "per-user temporal"  # the planted log has ordered timestamps
    assert {t.model for t in chosen.trials} == {"rp3beta", "itemknn", "ease", "bspm"}
    assert sum(t.note == "chosen" for t in chosen.trials) == 1
    assert any(t.status == "pruned" for t in chosen.trials)  # weak trials stop early
    assert all(t.fit_seconds >= 0 and t.memory_mb >= 0 for t in chosen.trials)
    assert chosen.neighbour_model in ("rp3beta", "itemknn")
    # refit on all of train, the choice is as good on the untouched test part as every
    # candidate at its defaults (within noise), and far better than popularity
    def test_ndcg(name: str, params: dict) -> float:
        model = create_model(name, **params).fit(split.train)
        return evaluate(model, split.train, split.test, (20,))["ndcg@20"]

    served = test_ndcg(chosen.user_model, chosen.user_params)
    defaults = [test_ndcg(t.model, t.params) for t in chosen.trials[:1]]
    defaults += [test_ndcg(name, {}) for name in ("itemknn", "ease")]
    assert served >= max(defaults) - 0.02
    assert served > 1.5 * test_ndcg("popularity", {})


def test_a_retrain_reuses_the_choice_until_the_data_changes_enough() -> None:
    assert changed_enough({"events": 100, "users": 10, "items": 20},
                          {"events": 140, "users": 12, "items": 20}) is None
    assert "events" in (changed_enough({"events": 100, "users": 10, "items": 20},
                                       {"events": 150, "users": 10, "items": 20}) or "")
    assert "items" in (changed_enough({"events": 100, "users": 10, "items": 30},
                                      {"events": 100, "users": 10, "items": 19}) or "")
    assert default_budget_seconds(810_128) == pytest.approx(600.0)
    assert default_budget_seconds(1_000) == 5.0
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rng = np.random.default_rng(1)
    events = [Event(event_id=f"e{u}-{j}", type="view", user_id=f"u{u}",
                    item_id=f"i{(u % 6) * 5 + int(rng.integers(0, 5))}",
                    timestamp=now - timedelta(minutes=u * 10 + j))
              for u in range(60) for j in range(6)]
    config = TrainingConfig(learn_blend=False, factors=None, list_length=20)
    first_plan = SelectionPlan(budget_seconds=2.0)
    bundle, manifest = train_bundle(events, config, configure=first_plan.configure)
    record = manifest.metrics["selection"]
    assert record["retune_reason"] == "no earlier selection"
    assert bundle.user_lists is not None and bundle.user_lists.model_name == record["user_model"]
    assert bundle.model_name == record["neighbour_model"]
    assert manifest.params["model"] == record["neighbour_model"]
    assert len(record["trials"]) >= 4 and all(
        {"model", "params", "ndcg", "fit_seconds", "memory_mb"} <= set(t)
        for t in record["trials"])
    again = SelectionPlan(previous=record, previous_version="v1")
    _, reused = train_bundle(events, config, configure=again.configure)
    assert reused.metrics["selection"]["reused_from"] == "v1"
    assert reused.metrics["selection"]["trials"] == record["trials"]
    assert reused.metrics["selection"]["retune_reason"] == ""
    forced = SelectionPlan(mode="retune", budget_seconds=1.0, previous=record)
    _, searched = train_bundle(events, config, configure=forced.configure)
    assert searched.metrics["selection"]["retune_reason"] == "asked (--retune)"
    grown = events + [Event(event_id=f"n{u}-{j}", type="view", user_id=f"n{u}",
                            item_id=f"i{j}", timestamp=now) for u in range(60) for j in range(6)]
    _, regrown = train_bundle(grown, config, configure=SelectionPlan(
        budget_seconds=1.0, previous=record).configure)
    assert "events" in regrown.metrics["selection"]["retune_reason"]


def test_the_benchmarks_retrain_timing_reuses_the_served_selection() -> None:
    from personify.jobs.served_evaluation import retrain_reusing, train_served

    split = planted_split(n_users=60, n_items=30, per_user=6)
    served = train_served(split.train, budget_seconds=1.0)
    assert served.selection is not None
    assert retrain_reusing(split.train, served) > 0
    # a version without a selection record cannot be reused: the timing refuses to lie
    served.manifest.metrics.pop("selection")
    with pytest.raises(RuntimeError, match="searched again"):
        retrain_reusing(split.train, served)


def test_a_spent_budget_skips_the_remaining_candidates_instead_of_overrunning() -> None:
    split = planted_split(n_users=80, n_items=40, per_user=6)
    chosen = select_configuration(split.train, budget_seconds=1e-3, subsample_users=30,
                                  models=["rp3beta", "itemknn", "ease", "bspm"])
    # the first candidate is measured (something must be chosen); the others are named as
    # skipped, not silently dropped and not run past the budget
    statuses = [(t.model, t.status) for t in chosen.trials]
    assert statuses[0][1] == "complete"
    assert [s for _, s in statuses[1:]] == ["skipped"] * (len(statuses) - 1)
    assert {m for m, _ in statuses} == {"rp3beta", "itemknn", "ease", "bspm"}
    assert all(t.note == "time budget spent" for t in chosen.trials[1:])
    assert chosen.trials[0].note == "chosen"
