from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from personify.networking.evaluation import (
    bootstrap_interval,
    ndcg,
    recall,
    temporal_task,
)
from personify.networking.state import Interaction

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _x(a: str, b: str, day: int) -> Interaction:
    return Interaction(a, b, T0 + timedelta(days=day))


def test_metrics_on_a_small_ranking() -> None:
    assert recall(["a", "b", "c"], {"b", "z"}, 2) == 0.5
    assert ndcg(["a", "b"], {"b"}, 2) == pytest.approx(1 / np.log2(3))
    assert ndcg(["b", "a"], {"b"}, 2) == 1.0
    assert ndcg(["a"], set(), 2) == 0.0


def test_temporal_task_keeps_only_new_pairs_and_splits_warm_from_cold() -> None:
    xs = [
        _x("a", "b", 1),
        _x("b", "c", 2),  # train
        _x("a", "b", 10),  # repeat pair: not a positive
        _x("a", "c", 11),
        _x("c", "a", 12),  # new warm pair, both directions
        _x("d", "a", 13),
    ]  # d unseen before the cut: cold
    task = temporal_task(xs, T0 + timedelta(days=5), ["a", "b", "c", "d", "e"])
    assert task.warm == {"a": {"c"}, "c": {"a"}}
    assert task.cold == {"a": {"d"}, "d": {"a"}}
    assert task.reciprocal == {"a": {"c"}, "c": {"a"}} == task.reciprocal_warm
    assert task.warm_universe == ["a", "b", "c"]
    assert task.all_universe == ["a", "b", "c", "d", "e"]


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_people() -> None:
    rng = np.random.default_rng(1)
    small = rng.random(20)
    large = rng.random(2000)
    lo_s, hi_s = bootstrap_interval(small)
    lo_l, hi_l = bootstrap_interval(large)
    assert lo_s <= small.mean() <= hi_s
    assert (hi_l - lo_l) < (hi_s - lo_s) / 4
