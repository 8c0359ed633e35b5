"""``personify train --factors N``: ALS item factors in the served artifact, 0 for none,
invalid counts refused naming the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from personify.serving.bundle import ModelBundle
from personify.storage.model_files import FileModelStore

T = "default"
Personify = Callable[..., Result]


def _served(tmp_path: Path) -> ModelBundle:
    bundle = FileModelStore(tmp_path / "models").load(T)[1]
    assert isinstance(bundle, ModelBundle)
    return bundle


def test_train_with_and_without_factors(
    personify: Personify, trainable_shop: None, tmp_path: Path
) -> None:
    pytest.importorskip("implicit")
    result = personify("train", "--no-blend", "--no-ranker", "--factors", "4")
    assert result.exit_code == 0, result.output
    bundle = _served(tmp_path)
    assert bundle.factors is not None and bundle.factors.item_factors.shape[1] == 4
    assert personify("train", "--no-blend", "--no-ranker", "--factors", "0").exit_code == 0
    assert _served(tmp_path).factors is None


def test_invalid_factor_count_is_refused(personify: Personify, trainable_shop: None) -> None:
    result = personify("train", "--no-blend", "--no-ranker", "--factors", "1")
    assert result.exit_code != 0 and "factors" in result.output, result.output


def test_user_model_lists_are_optional_and_validated(
    personify: Personify, trainable_shop: None, tmp_path: Path
) -> None:
    assert personify("train", "--no-ranker", "--no-select").exit_code == 0
    lists = _served(tmp_path).user_lists
    assert lists is not None and lists.model_name == "bspm"  # the fixed default
    result = personify("train", "--no-ranker", "--user-model", "none")
    assert result.exit_code == 0, result.output
    assert _served(tmp_path).user_lists is None
    result = personify("train", "--no-ranker", "--user-model", "nope")
    assert result.exit_code != 0 and "user_model" in result.output, result.output
    result = personify("train", "--no-ranker", "--blend-selection", "greedy")
    assert result.exit_code != 0 and "blend_selection" in result.output, result.output


def test_train_selects_on_its_events_shows_the_trials_and_reuses_the_choice(
    personify: Personify, trainable_shop: None, tmp_path: Path
) -> None:
    pytest.importorskip("optuna")
    first = personify("train", "--no-ranker", "--budget", "2")
    assert first.exit_code == 0, first.output
    assert "selection:" in first.output and "validation" in first.output
    store = FileModelStore(tmp_path / "models")
    manifest = store.list(T)[-1]
    record = manifest.metrics["selection"]
    assert record["protocol"] in ("per-user temporal", "per-user random")
    shown = personify("models", "show", manifest.version)
    assert shown.exit_code == 0, shown.output
    assert "one-standard-error" in shown.output and "chosen" in shown.output
    for trial in record["trials"]:
        assert trial["model"] in shown.output
    wide = [line for line in shown.output.splitlines() if "│" in line and len(line) > 80]
    assert not wide, wide
    again = personify("train", "--no-ranker")
    assert again.exit_code == 0, again.output
    assert f"reused from {manifest.version}" in again.output
    fixed = personify("train", "--no-ranker", "--no-blend", "--model", "itemknn")
    assert fixed.exit_code == 0 and "selection:" not in fixed.output
    missing = personify("models", "show", "nope")
    assert missing.exit_code != 0 and "version" in missing.output


def test_the_hybrid_model_trains_into_the_served_bundle(
    personify: Personify, trainable_shop: None, tmp_path: Path
) -> None:
    """``algorithms/hybrid.py`` is served: ``--model hybrid`` gives the neighbours, and
    ``--user-model hybrid`` each trained person's list."""
    result = personify("train", "--no-ranker", "--no-blend", "--factors", "0",
                       "--model", "hybrid", "--user-model", "hybrid")
    assert result.exit_code == 0, result.output
    bundle = _served(tmp_path)
    assert bundle.model_name == "hybrid" and bundle.neighbours.nnz > 0
    assert bundle.user_lists is not None and bundle.user_lists.model_name == "hybrid"
