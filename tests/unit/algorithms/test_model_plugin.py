"""A recommendation model from another distribution (a plugin): declared as an entry point of
the ``personify.models`` group, discovered without any edit to personify, trained by
``personify train --model`` and served by the chain. The distribution is a ``.dist-info``
directory and a module in a temporary folder put on ``sys.path``, as ``pip install`` leaves
them in site-packages."""

from __future__ import annotations

import logging
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from personify import algorithms
from personify.algorithms.neighbours import ItemNeighbourModel
from personify.cli.main import app
from personify.domain.events import Event
from personify.domain.items import Item
from personify.jobs.training import TrainingConfig, train_bundle
from personify.serving.bundle import ModelBundle
from personify.serving.catalog import CatalogSnapshot
from personify.serving.chain import RecommendationService
from personify.serving.request import RecommendationRequest
from personify.storage.model_files import FileModelStore
from personify.storage.online.memory import MemoryOnlineState
from personify.storage.registry import open_stores

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
T = "default"
MODULE = "personify_together_plugin"

PLUGIN_SOURCE = '''
"""Item-item co-occurrence: W[i, j] = how many people have both i and j."""

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from personify.algorithms.neighbours import ItemNeighbourModel
from personify.domain.errors import ConfigurationError


class Together(ItemNeighbourModel):
    name: ClassVar[str] = "together"

    def __init__(self, min_count: int = 1) -> None:
        self.min_count = min_count

    def fit(self, data):
        if self.min_count < 1:
            raise ConfigurationError("min_count must be at least 1", field="min_count",
                                     accepted="an integer >= 1")
        x = sp.csr_matrix(data.matrix, dtype=np.float32)
        x.data[:] = 1.0
        w = sp.csr_matrix(x.T @ x)
        w.setdiag(0.0)
        w.data[w.data < self.min_count] = 0.0
        w.eliminate_zeros()
        return self._fitted(w, x)
'''


def _install(folder: Path, entry_points: str, name: str = "personify-together-plugin") -> None:
    """What installing a wheel leaves in site-packages: the module and its .dist-info."""
    (folder / f"{MODULE}.py").write_text(textwrap.dedent(PLUGIN_SOURCE), encoding="utf-8")
    info = folder / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site-packages"
    site.mkdir()
    _install(site, "[personify.models]\ntogether = personify_together_plugin:Together\n")
    monkeypatch.syspath_prepend(str(site))
    before = dict(algorithms._REGISTRY)
    try:
        yield site
    finally:
        algorithms._REGISTRY.clear()
        algorithms._REGISTRY.update(before)
        sys.modules.pop(MODULE, None)


def _events() -> list[Event]:
    """Each person views one of 30 pairs of items, and a few random others."""
    rng = np.random.default_rng(3)
    events = []
    for u in range(240):
        pair = u % 30
        items = [f"i{2 * pair}", f"i{2 * pair + 1}",
                 *(f"i{j}" for j in rng.choice(60, 2, replace=False))]
        for k, item in enumerate(dict.fromkeys(items)):
            events.append(Event(event_id=f"e{u}-{k}", type="view", user_id=f"u{u}",
                                item_id=item, timestamp=NOW - timedelta(days=2, minutes=60 - k)))
    return events


def _serve(bundle: ModelBundle, item_id: str) -> list[str]:
    state = MemoryOnlineState()
    state.apply(T, [Event(event_id="now", type="view", user_id="fresh", item_id=item_id,
                          timestamp=NOW - timedelta(minutes=1))])
    catalog = CatalogSnapshot([Item(item_id=f"i{i}") for i in range(60)])
    service = RecommendationService(bundles=lambda t: bundle, catalogs=lambda t: catalog,
                                    state=state, clock=lambda: NOW)
    result = service.recommend(T, RecommendationRequest(user_id="fresh", n=3))
    assert result.items[0].scores["collaborative"] > 0
    return [r.item_id for r in result.items]


def test_the_entry_point_is_discovered_without_importing_the_plugin(installed: Path) -> None:
    assert algorithms.load_model_plugins() == ["together"]
    assert MODULE not in sys.modules  # imported only when the model is used
    assert "together" in algorithms.available_models()
    model = algorithms.create_model("together", min_count=2)
    assert isinstance(model, ItemNeighbourModel) and type(model).__module__ == MODULE


def test_the_plugin_model_is_trained_into_the_bundle_and_served(installed: Path) -> None:
    algorithms.load_model_plugins()
    config = TrainingConfig(model="together", params={"min_count": 2}, factors=None,
                            user_model=None, learn_blend=False, train_ranker=False)
    bundle, manifest = train_bundle(_events(), config)
    assert bundle.model_name == "together" and manifest.params["model"] == "together"
    assert _serve(bundle, "i8")[0] == "i9"  # seen with i8 by everyone who saw i8


def test_personify_train_discovers_and_trains_the_plugin_model(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(algorithms, "_discovered", False)  # a fresh process: nothing scanned
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERSONIFY_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("PERSONIFY_CONSENT_DEFAULTS", '{"profiling": "opt-out"}')
    url = f"sqlite:///{tmp_path / 'plugin.db'}"
    with open_stores(url) as stores:
        stores.events.append(T, _events())
    result = CliRunner().invoke(app, ["--database-url", url, "train", "--model", "together",
                                      "--param", "min_count=2", "--user-model", "none",
                                      "--no-blend", "--no-ranker", "--factors", "0"])
    assert result.exit_code == 0, result.output
    manifest, bundle = FileModelStore(tmp_path / "models").load(T)
    assert isinstance(bundle, ModelBundle) and bundle.model_name == "together"
    assert manifest.params["model"] == "together" and manifest.params["min_count"] == 2
    assert _serve(bundle, "i8")[0] == "i9"


def test_a_plugin_cannot_replace_a_built_in_model_and_a_bad_one_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    site = tmp_path / "site-packages"
    site.mkdir()
    _install(site, "[personify.models]\nease = personify_together_plugin:Together\n"
                   "broken = personify_together_plugin\n", name="personify-shadow-plugin")
    monkeypatch.syspath_prepend(str(site))
    before = dict(algorithms._REGISTRY)
    try:
        with caplog.at_level(logging.WARNING, logger="personify.algorithms"):
            assert algorithms.load_model_plugins() == []
        assert algorithms._REGISTRY["ease"] == before["ease"]
        assert "broken" not in algorithms.available_models()
        assert "built-in" in caplog.text and "not 'package.module:ClassName'" in caplog.text
    finally:
        algorithms._REGISTRY.clear()
        algorithms._REGISTRY.update(before)
