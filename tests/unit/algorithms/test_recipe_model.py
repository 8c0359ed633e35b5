"""The "add a recommendation model" recipe of docs/CONTRIBUTING.md, followed from outside the
package: a model class, one registration line, the model contract, and the model trained by
``personify train --model`` and served by the chain (its neighbour matrix feeds the
``collaborative`` source) without any other edit to personify."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from personify import algorithms
from personify.algorithms.neighbours import ItemNeighbourModel
from personify.cli.main import app
from personify.data.interactions import Interactions
from personify.domain.errors import ConfigurationError
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
from personify.testing.algorithm_contracts import RecommenderContract

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
T = "default"


# -- step 1: the model (a Recommender; item-item models reuse ItemNeighbourModel) ------------


class Lift(ItemNeighbourModel):
    """Item-item lift: ``W[i, j]`` = people who have both i and j / people who have j, the
    ``k`` largest per item (a plain co-occurrence count would favour what everyone has)."""

    name: ClassVar[str] = "lift"

    def __init__(self, k: int = 50, *, binary: bool = True) -> None:
        self.k = k
        self.binary = binary

    def fit(self, data: Interactions) -> Self:
        self._check_k()
        x = sp.csr_matrix(data.matrix, dtype=np.float32)
        if self.binary:
            x.data[:] = 1.0
        together = sp.csr_matrix(x.T @ x)
        together.setdiag(0.0)
        together.eliminate_zeros()
        counts = np.asarray(x.sum(axis=0)).ravel()
        lift = sp.csr_matrix(together @ sp.diags(1.0 / np.maximum(counts, 1.0)))
        rows, cols, vals = [], [], []
        for i in range(lift.shape[0]):
            start, end = lift.indptr[i], lift.indptr[i + 1]
            keep = np.argsort(-lift.data[start:end], kind="stable")[: self.k]
            rows.append(np.full(len(keep), i))
            cols.append(lift.indices[start:end][keep])
            vals.append(lift.data[start:end][keep])
        w = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=lift.shape, dtype=np.float32,
        )
        return self._fitted(w, x)


# -- step 2: one registration line (inside the package: the entry in algorithms._REGISTRY) --


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    algorithms.register("lift", f"{__name__}:Lift")
    try:
        yield
    finally:
        algorithms._REGISTRY.pop("lift", None)


# -- step 3: the model contract ---------------------------------------------------------------


class TestLiftContract(RecommenderContract):
    def make_model(self) -> Lift:
        return Lift(k=40)


def test_the_registered_model_is_created_by_name_and_validates_its_parameters() -> None:
    assert "lift" in algorithms.available_models()
    assert isinstance(algorithms.create_model("lift", k=5), Lift)
    with pytest.raises(ConfigurationError) as refused:
        algorithms.create_model("lift", k=0).fit(Interactions.from_arrays(["u"], ["i"]))
    assert refused.value.field == "k"


# -- step 4: trained and served ---------------------------------------------------------------


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
    assert "collaborative" in result.sources
    assert result.items[0].scores["collaborative"] > 0
    return [r.item_id for r in result.items]


def test_the_model_is_trained_into_the_bundle_and_served() -> None:
    config = TrainingConfig(model="lift", params={"k": 10}, factors=None, user_model=None,
                            learn_blend=False, train_ranker=False)
    bundle, manifest = train_bundle(_events(), config)
    assert bundle.model_name == "lift" and manifest.params["model"] == "lift"
    assert _serve(bundle, "i8")[0] == "i9"  # the item seen with i8 by everyone who saw it


def test_personify_train_model_trains_and_promotes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERSONIFY_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("PERSONIFY_CONSENT_DEFAULTS", '{"profiling": "opt-out"}')
    url = f"sqlite:///{tmp_path / 'recipe.db'}"
    with open_stores(url) as stores:
        stores.events.append(T, _events())
    result = CliRunner().invoke(app, ["--database-url", url, "train", "--model", "lift",
                                      "--param", "k=10", "--user-model", "none",
                                      "--no-blend", "--no-ranker", "--factors", "0"])
    assert result.exit_code == 0, result.output
    manifest, bundle = FileModelStore(tmp_path / "models").load(T)
    assert isinstance(bundle, ModelBundle) and bundle.model_name == "lift"
    params: dict[str, Any] = manifest.params
    assert params["model"] == "lift" and params["k"] == 10, params
    assert _serve(bundle, "i8")[0] == "i9"
