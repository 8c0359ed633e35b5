"""Erasure from the served model: subtracting a person equals training without them
(popularity always; item-item neighbours for itemknn)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from personify.domain.events import Event
from personify.jobs.training import TrainingConfig, train_bundle
from personify.privacy.model_influence import (
    build_influence,
    forget_rows,
    load_influence,
    save_influence,
    version_dir,
)
from personify.privacy.model_versions import forget_in_served_model
from personify.serving.bundle import ModelBundle
from personify.storage.model_files import FileModelStore

NOW = datetime(2025, 5, 1, tzinfo=UTC)


def _events(seed: int = 1, users: int = 30, items: int = 40) -> list[Event]:
    rng = random.Random(seed)
    out = []
    for u in range(users):
        for j in range(rng.randint(1, 8)):
            out.append(Event(
                event_id=f"e{u}-{j}", type=rng.choice(["view", "click", "purchase", "dislike"]),
                user_id=f"u{u}", item_id=f"i{rng.randint(0, items)}",
                timestamp=NOW - timedelta(hours=rng.randint(0, 500)),
            ))
    return sorted(out, key=lambda e: e.timestamp)


def _neighbours(bundle: ModelBundle) -> dict[tuple[str, str], float]:
    m = bundle.neighbours.tocoo()
    ids = bundle.items.ids
    return {(ids[r], ids[c]): float(v) for r, c, v in zip(m.row, m.col, m.data, strict=True)
            if v != 0}


def _popularity(bundle: ModelBundle) -> dict[str, float]:
    return {i: float(v) for i, v in zip(bundle.items.ids, bundle.popularity, strict=True) if v > 0}


@pytest.mark.parametrize(("model", "params"), [
    ("itemknn", {"k": 100, "shrink": 10.0, "similarity": "asymmetric", "alpha": 0.3}),
    ("itemknn", {"k": 100, "shrink": 2.0, "similarity": "cosine"}),
    ("itemknn", {"k": 100, "similarity": "cooccurrence"}),
    ("rp3beta", {"k": 100, "alpha": 1.0, "beta": 0.5}),
    ("rp3beta", {"k": 100, "alpha": 0.8, "beta": 0.3}),
])
@pytest.mark.parametrize("victim", ["u3", "u7", "u12"])
def test_forgetting_a_row_equals_training_without_it(model: str, params: dict, victim: str
                                                     ) -> None:
    events = _events()
    config = TrainingConfig(model=model, params=params, learn_blend=False)
    bundle, _ = train_bundle(events, config, version="a")
    index = build_influence(events, bundle.items, key=str, weights=config.weights,
                            half_life_days=config.popularity_half_life_days)
    forgotten, left = forget_rows(bundle, index, index.rows_of([victim]), "b")
    fresh, _ = train_bundle([e for e in events if e.user_id != victim], config, version="c")
    got, want = _neighbours(forgotten), _neighbours(fresh)
    assert got.keys() == want.keys()
    assert all(got[k] == pytest.approx(want[k], abs=1e-6) for k in want)
    pop_got, pop_want = _popularity(forgotten), _popularity(fresh)
    assert pop_got.keys() == pop_want.keys()
    assert all(pop_got[k] == pytest.approx(pop_want[k], rel=1e-4) for k in pop_want)
    assert victim not in left.keys and forgotten.version == "b"
    assert (_neighbours(bundle), _popularity(bundle)) != (got, pop_got), "nothing was removed"


def test_top_k_rows_match_up_to_ties() -> None:
    events = _events(seed=5)
    config = TrainingConfig(model="itemknn", params={"k": 4, "similarity": "cosine"},
                            learn_blend=False)
    bundle, _ = train_bundle(events, config, version="a")
    index = build_influence(events, bundle.items, key=str)
    forgotten, _ = forget_rows(bundle, index, index.rows_of(["u2"]), "b")
    fresh, _ = train_bundle([e for e in events if e.user_id != "u2"], config, version="c")
    def column(bundle: ModelBundle, item: str) -> list[float]:
        """The k kept similarities of target ``item`` (top-k is chosen per target)."""
        col = bundle.neighbours.tocsc()[:, bundle.items.index(item)]
        return sorted(round(float(v), 5) for v in col.data if v != 0)

    for item in fresh.items.ids:
        assert column(forgotten, item) == column(fresh, item), item


def test_served_model_is_rewritten_promoted_and_swapped(tmp_path: Path) -> None:
    events = _events()
    config = TrainingConfig(learn_blend=False)
    bundle, manifest = train_bundle(events, config, version="v1")
    models = FileModelStore(tmp_path)
    manifest.tenant = "default"
    models.save("default", bundle, manifest)
    save_influence(version_dir(models, "default", "v1"),
                   build_influence(events, bundle.items, key=lambda s: f"k:{s}"))
    models.promote("default", "v1")

    class Holder:
        current: ModelBundle | None = bundle

        def get(self, tenant: str) -> ModelBundle | None:
            return self.current

        def set(self, tenant: str, new: ModelBundle) -> None:
            self.current = new

    holder = Holder()
    result = forget_in_served_model(models, holder, "default", ["k:u5", "k:u6"])
    assert result.status == "subtracted" and result.rows == 2 and result.exact_neighbours
    assert models.promoted_version("default") == result.version != "v1"
    assert holder.current is not None and holder.current.version == result.version
    stored = load_influence(version_dir(models, "default", str(result.version)))
    assert stored is not None and "k:u5" not in stored.keys and len(stored.keys) == 28
    again = forget_in_served_model(models, holder, "default", ["k:u5"])
    assert again.status == "not_in_model"
    assert np.isfinite(holder.current.popularity).all()


@pytest.mark.parametrize("user_model", ["ease", "rp3beta", "itemknn", "gfcf", "bspm", "als"])
def test_every_selectable_user_model_has_its_lists_dropped_on_erasure(user_model: str) -> None:
    """Whatever the selection chose, the per-person lists were scored through everyone:
    erasure drops them (the derived version serves by the exact neighbour fold-in) and the
    neighbours themselves are subtracted exactly."""
    if user_model == "als":
        pytest.importorskip("implicit")
    params = {"gfcf": {"n_factors": 4}, "bspm": {"factor_dim": 4},
              "als": {"factors": 4, "iterations": 2}}.get(user_model, {})
    events = _events()
    config = TrainingConfig(model="rp3beta", params={"k": 100, "alpha": 0.8, "beta": 0.3},
                            learn_blend=False, factors=None, user_model=user_model,
                            user_params=params, list_length=10)
    bundle, _ = train_bundle(events, config, version="a")
    assert bundle.user_lists is not None and bundle.user_lists.model_name == user_model
    index = build_influence(events, bundle.items, key=str, weights=config.weights,
                            half_life_days=config.popularity_half_life_days)
    forgotten, _ = forget_rows(bundle, index, index.rows_of(["u3"]), "b")
    assert forgotten.user_lists is None
    fresh, _ = train_bundle([e for e in events if e.user_id != "u3"], config, version="c")
    got, want = _neighbours(forgotten), _neighbours(fresh)
    assert got.keys() == want.keys()
