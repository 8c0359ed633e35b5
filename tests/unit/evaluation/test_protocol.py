"""The evaluation protocol, tuning and report on small synthetic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from personify.algorithms.ease import EASE
from personify.algorithms.popularity import Popularity
from personify.data.interactions import Interactions
from personify.data.vocabulary import Vocabulary
from personify.domain.errors import InvalidInput
from personify.evaluation.protocol import compare, evaluate
from personify.evaluation.report import load_dataset, run_evaluation
from personify.evaluation.tuning import tune
from personify.testing.algorithm_contracts import planted_split


def test_evaluate_masks_train_and_matches_hand_computation() -> None:
    users, items = Vocabulary(["a", "b", "c"]), Vocabulary(["x", "y", "z", "w"])
    # popularity order: x (3) > y (2) > z (1) > w (0)
    train = Interactions.from_arrays(["a", "b", "c", "b", "c", "c"],
                                     ["x", "x", "x", "y", "y", "z"], users=users, items=items)
    test = Interactions.from_arrays(["a", "a", "b"], ["y", "w", "z"], users=users, items=items)
    result = evaluate(Popularity().fit(train), train, test, ks=(1, 2), batch_size=1)
    # a: train {x} -> ranking y, z -> hits [1, 0], 2 relevant; b: train {x, y} -> z, w -> [1, 0]
    assert result["users"] == 2.0
    assert result["recall@1"] == pytest.approx((1 / 2 + 1) / 2)
    assert result["precision@2"] == pytest.approx(0.5)
    assert result["hit_rate@2"] == 1.0
    unmasked = evaluate(Popularity().fit(train), train, test, ks=(1,), mask_train=False)
    assert unmasked["recall@1"] == 0.0  # x ranks first for everyone and is never a test item


def test_evaluate_reports_progress_and_beyond_accuracy() -> None:
    split = planted_split()
    seen: list[tuple[int, int]] = []
    result = evaluate(EASE(l2=20.0).fit(split.train), split.train, split.test, ks=(10, 20),
                      batch_size=50, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] == result["users"]
    assert 0 < result["coverage@20"] <= 1 and 0 <= result["gini@20"] <= 1
    assert result["novelty@20"] > 0 and result["arp@20"] > 0


def test_compare_adds_the_baselines_and_the_model_beats_them() -> None:
    split = planted_split()
    results = compare({"ease": EASE(l2=20.0)}, split.train, split.test, ks=(10,))
    assert set(results) == {"ease", "popularity", "random"}
    assert results["ease"]["ndcg@10"] > results["popularity"]["ndcg@10"] > (
        results["random"]["ndcg@10"])
    assert results["ease"]["fit_seconds"] >= 0


def test_tune_uses_a_validation_split_within_budget() -> None:
    split = planted_split()
    result = tune("ease", split.train, n_trials=4, time_budget_seconds=30.0, metric="ndcg@10")
    assert len(result.trials) == 4
    assert result.best_value == max(t["ndcg@10"] for t in result.trials)
    assert 10.0 <= result.best_params["l2"] <= 5000.0
    with pytest.raises(InvalidInput):
        tune("random", split.train)


def test_run_evaluation_on_a_csv_writes_the_report(tmp_path: Path) -> None:
    split = planted_split()
    data = split.train
    rows = ["user_id,item_id,timestamp"]
    assert data.timestamps is not None
    for u, i, t in zip(data.user_idx, data.item_idx, data.timestamps, strict=True):
        rows.append(f"{data.users.ids[u]},{data.items.ids[i]},{t}")
    csv_path = tmp_path / "events.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    console = Console(record=True, width=200)
    report = run_evaluation(csv_path, ["itemknn"], tmp_path / "out", ks=(5, 10),
                            console=console)
    assert set(report.results) == {"itemknn", "popularity", "random"}
    for name in ("results.json", "report.md", "metric_vs_k.png", "accuracy_vs_coverage.png",
                 "cost.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert "itemknn" in (tmp_path / "out" / "report.md").read_text()
    shown = console.export_text()
    assert "recall" in shown and "@10" in shown
    # timestamps in user order: most test users first appear in the test period, said so
    assert "no training history" in shown
    assert report.results["itemknn"]["cold_users"] > 0
    assert np.isfinite(report.results["itemknn"]["fit_seconds"])


def test_unknown_dataset_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput) as info:
        load_dataset("no-such-dataset")
    assert "gowalla" in (info.value.accepted or "")


def test_blend_weight_search_ranks_weight_vectors_on_validation() -> None:
    from personify.algorithms.blend import ScoreBlend
    from personify.algorithms.random_items import RandomItems
    from personify.data.splits import validation_split
    from personify.evaluation.tuning import blend_weight_search

    split = planted_split()
    fit, valid = validation_split(split.train, 0.25)
    good, noise = EASE(l2=20.0).fit(fit), RandomItems(seed=1).fit(fit)
    rows = blend_weight_search([good, noise], fit, valid, [(0.0, 1.0), (1.0, 0.0), (1.0, 0.1)],
                               k=10, batch_size=64)
    assert rows[0]["weights"][0] == 1.0 and rows[-1]["weights"] == [0.0, 1.0]
    blend = ScoreBlend([("ease", {"l2": 20.0}), ("random", {"seed": 1})], [1.0, 0.0]).fit(fit)
    direct = evaluate(blend, fit, valid, ks=(10,))["ndcg@10"]
    by_grid = next(r for r in rows if r["weights"] == [1.0, 0.0])["ndcg@10"]
    assert direct == pytest.approx(by_grid)
    with pytest.raises(InvalidInput):
        blend_weight_search([good], fit, valid, [(1.0, 2.0)])
