"""``personify train --engine spark``: the store's events exported and trained on Spark (local
mode), the version saved, promoted and served like a local training; options validated."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from personify.serving.bundle import ModelBundle
from personify.storage.model_files import FileModelStore

T = "default"
Personify = Callable[..., Result]


@pytest.mark.spark
@pytest.mark.timeout(1200)  # Spark on a loaded 2-core machine; well under a minute when idle
def test_train_on_spark_promotes_a_served_bundle(
    personify: Personify, trainable_shop: None, tmp_path: Path, spark: Any
) -> None:
    result = personify("train", "--engine", "spark", "--master", "local[2]", "--no-blend",
                       "--factors", "0")
    assert result.exit_code == 0, result.output
    assert "on Spark (local[2])" in result.output and "(promoted)" in result.output
    models = FileModelStore(tmp_path / "models")
    manifest, bundle = models.load(T)
    assert isinstance(bundle, ModelBundle) and manifest.metrics["engine"] == "spark"
    assert manifest.events_used == 100 and bundle.user_lists is not None
    assert bundle.similar("i0", 3)  # neighbours served as usual
    assert spark.sparkContext._jsc is not None  # the shared session was not stopped


def test_spark_options_are_validated(personify: Personify, trainable_shop: None) -> None:
    engine = personify("train", "--engine", "flink")
    assert engine.exit_code == 2 and "field: engine" in engine.output
    master = personify("train", "--engine", "spark", "--master", "mars://x")
    assert master.exit_code == 2 and "field: master" in master.output
    events = personify("train", "--events", "/tmp/x")
    assert events.exit_code == 2 and "field: events" in events.output
