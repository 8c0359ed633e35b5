"""Churn / propensity on customers simulated with a known dropout process: the models learn it,
are calibrated, explain themselves, and are compared with the baselines on one temporal split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from personify.domain.events import Event
from personify.insights.population import Population
from personify.insights.predictions import (
    DAY,
    FEATURE_NAMES,
    Activity,
    activity_of_rows,
    evaluate,
    features_at,
    labels_after,
    lift_at,
    score_population,
)

pytest.importorskip("lightgbm")
START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 540


def simulate(n: int = 1500, seed: int = 1) -> list[tuple[str, float, str, float]]:
    """Customers join over the first 300 days, buy at a personal rate and drop out after an
    exponential lifetime; spend per purchase is personal."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, float, str, float]] = []
    for c in range(n):
        join = rng.uniform(0, 300)
        rate = rng.gamma(2.0, 0.02)
        life = rng.exponential(250)
        value = rng.gamma(4.0, 10.0)
        t = join
        while True:
            rows.append((f"c{c}", (START + timedelta(days=t)).timestamp(), "purchase", value))
            t += rng.exponential(1 / rate)
            if t > min(join + life, DAYS):
                break
    return rows


@pytest.fixture(scope="module")
def activity() -> Activity:
    return activity_of_rows(simulate())


def test_features_and_labels_respect_the_cut(activity: Activity) -> None:
    cut = (START + timedelta(days=300)).timestamp()
    table = features_at(activity, cut)
    recency = table.X[:, FEATURE_NAMES.index("recency_days")]
    assert len(table.subjects) > 500 and recency.min() >= 1  # nothing from the cut day on
    y = labels_after(activity, table.subjects, cut, 90)
    assert 0.1 < y.mean() < 0.9
    assert lift_at(np.array([1.0, 0, 0, 0]), np.array([0.9, 0.1, 0.2, 0.3]), 0.25) == 4.0


def test_evaluation_beats_the_recency_rule_and_is_calibrated(activity: Activity) -> None:
    end = (START + timedelta(days=DAYS)).timestamp()
    report = evaluate(activity, end, rounds=50)
    churn = report["churn"]
    assert churn["model"]["auc"] > 0.7
    assert churn["model"]["auc"] > churn["recency_rule"]["auc"] - 0.02
    assert churn["model"]["brier"] < churn["recency_rule"]["brier"] + 0.005
    low, high = churn["vs_recency_rule"]["auc_difference_ci95"]
    assert low <= churn["vs_recency_rule"]["auc_difference"] <= high
    predicted = np.mean([r["predicted"] * r["people"] for r in churn["calibration"]])
    observed = np.mean([r["observed"] * r["people"] for r in churn["calibration"]])
    assert predicted == pytest.approx(observed, rel=0.15)
    assert report["propensity"]["model"]["lift_at_10pct"] > 1.5
    assert report["clv"]["spearman"] > 0.3


def test_scores_with_reasons_for_every_purchaser() -> None:
    rows = simulate(600, seed=2)
    events = [Event(event_id=f"e{i}", type=k, user_id=s, item_id="x", value=v,
                    timestamp=datetime.fromtimestamp(t, UTC))
              for i, (s, t, k, v) in enumerate(rows)]
    as_of = START + timedelta(days=DAYS)
    population = Population(tenant="t", fitted_at=as_of, as_of=as_of, customers=0)
    report = score_population(population, events, as_of=as_of)
    assert report["churn"]["trained"] and report["propensity"]["trained"]
    purchasers = {s for s, t, _, _ in rows if t < as_of.timestamp() - DAY}
    assert set(population.scores) == purchasers
    some = next(iter(population.scores.values()))
    assert 0 <= some.churn <= 1 and 0 <= some.propensity <= 1
    assert len(some.churn_reasons) == 3 and {"feature", "effect", "en", "ru"} <= set(
        some.churn_reasons[0])
