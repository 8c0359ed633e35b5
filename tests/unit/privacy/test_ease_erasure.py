"""Erasing a person from an EASE neighbour model in place (Woodbury downdate of the kept inverse)
equals retraining without their rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from personify.algorithms.base import Recommender
from personify.algorithms.ease import (
    EASE,
    downdate_inverse,
    inverse_from_weights,
    neighbours_from_inverse,
)
from personify.data.interactions import Interactions
from personify.data.vocabulary import Vocabulary
from personify.domain.events import Event
from personify.jobs.training import TrainingConfig, train_bundle, train_tenant
from personify.privacy.ease_inverse import EASE_FILE, save_ease_inverse
from personify.privacy.model_influence import (
    build_influence,
    forget_rows,
    load_influence,
    version_dir,
)
from personify.privacy.model_versions import ErasureAwareModelStore
from personify.privacy.runtime import PrivacyRuntime
from personify.serving.bundle import ModelBundle
from personify.serving.model_registry import BundleRegistry
from personify.storage.registry import Stores

T = "default"
NOW = datetime(2025, 5, 1, tzinfo=UTC)


def _events(seed: int = 1, users: int = 40, items: int = 30) -> list[Event]:
    rng = random.Random(seed)
    return sorted(
        (
            Event(
                event_id=f"e{u}-{j}",
                type=rng.choice(["view", "click", "purchase", "dislike"]),
                user_id=f"u{u}",
                item_id=f"i{rng.randint(0, items)}",
                timestamp=NOW - timedelta(hours=rng.randint(0, 500)),
            )
            for u in range(users)
            for j in range(rng.randint(1, 9))
        ),
        key=lambda e: e.timestamp,
    )


def _config(dtype: str = "float64", l2: float = 3.0) -> TrainingConfig:
    return TrainingConfig(
        model="ease",
        params={"l2": l2, "dtype": dtype},
        learn_blend=False,
        train_ranker=False,
        factors=None,
        user_model=None,
    )


def _neighbours(bundle: ModelBundle) -> dict[tuple[str, str], float]:
    """Links by item id (ids, not indices: a retrain may not know an item only the person had);
    weights below 1e-9 are rounding noise around an exact zero, not links."""
    m = bundle.neighbours.tocoo()
    ids = bundle.items.ids
    return {
        (ids[r], ids[c]): float(v) for r, c, v in zip(m.row, m.col, m.data, strict=True) if v > 1e-9
    }


def _inverse(x: sp.csr_matrix, l2: float) -> np.ndarray:
    gram = np.asarray((x.T @ x).toarray(), dtype=np.float64)
    return np.linalg.inv(gram + l2 * np.eye(gram.shape[0]))


def test_the_downdate_is_the_inverse_without_the_rows() -> None:
    rng = np.random.default_rng(3)
    x = sp.csr_matrix((rng.random((60, 45)) < 0.15).astype(np.float64))
    p = _inverse(x, 2.0)
    for removed in ([7], [0, 13, 59], list(range(10))):
        keep = np.setdiff1d(np.arange(60), removed)
        out = np.empty_like(p)
        downdate_inverse(p, x[removed], out)
        assert np.abs(out - _inverse(x[keep], 2.0)).max() < 1e-12
        assert np.abs(out - p).max() > 1e-3, "the rows mattered"


def test_the_inverse_rebuilt_from_the_weights_is_p() -> None:
    rng = np.random.default_rng(4)
    x = sp.csr_matrix((rng.random((30, 50)) < 0.2).astype(np.float64))  # Woodbury form
    coo = x.tocoo()
    data = Interactions.from_arrays(
        [f"u{r}" for r in coo.row],
        [f"i{c}" for c in coo.col],
        coo.data,
        users=Vocabulary([f"u{r}" for r in range(30)]),
        items=Vocabulary([f"i{c}" for c in range(50)]),
    )
    model = EASE(l2=5.0, dtype="float64").fit(data)
    out = inverse_from_weights(model.B_, model.p_diag_, np.empty((50, 50)))
    assert np.abs(out - _inverse(x, 5.0)).max() < 1e-12


def _fitted_ease(
    events: list[Event], config: TrainingConfig, directory: Path
) -> tuple[ModelBundle, Any]:
    """A bundle and its influence index with the EASE inverse kept, as ``train_tenant`` does."""
    kept: list[Recommender] = []
    bundle, _ = train_bundle(
        events, config, version="a", on_model=lambda model, used: kept.append(model)
    )
    assert isinstance(kept[0], EASE)
    index = build_influence(
        events,
        bundle.items,
        key=str,
        weights=config.weights,
        half_life_days=config.popularity_half_life_days,
    )
    index.ease = save_ease_inverse(directory, kept[0], config.neighbours)
    return bundle, index


@pytest.mark.parametrize("victims", [["u3"], ["u7"], ["u12", "u30"]])
def test_erasing_equals_retraining_without_the_person_float64(
    tmp_path: Path, victims: list[str]
) -> None:
    events, config = _events(), _config("float64")
    bundle, index = _fitted_ease(events, config, tmp_path)
    rows = index.rows_of(victims)
    forgotten, left = forget_rows(bundle, index, rows, "b")
    # the kept inverse is the retrained one, to 1e-6 (float64: rounding only)
    keep = np.setdiff1d(np.arange(len(index.keys)), rows)
    assert left.ease is not None and left.ease.scratch
    assert np.abs(left.ease.matrix() - _inverse(index.x[keep], 3.0)).max() < 1e-6
    # and the served neighbours are those of a model retrained without the person
    fresh, _ = train_bundle([e for e in events if e.user_id not in victims], config, version="c")
    got, want = _neighbours(forgotten), _neighbours(fresh)
    assert got.keys() == want.keys()
    assert max(abs(got[k] - want[k]) for k in want) < 1e-6
    assert got != _neighbours(bundle), "nothing was removed"


def test_erasing_float32_stays_within_its_stated_tolerance(tmp_path: Path) -> None:
    """float32 (the default dtype): the downdated weights are within 1e-6 of a float32 retrain
    (measured 6e-8 here; both differ from the float64 truth by about as much)."""
    events, config = _events(seed=2), _config("float32", l2=10.0)
    bundle, index = _fitted_ease(events, config, tmp_path)
    forgotten, _ = forget_rows(bundle, index, index.rows_of(["u5"]), "b")
    fresh, _ = train_bundle([e for e in events if e.user_id != "u5"], config, version="c")
    got, want = _neighbours(forgotten), _neighbours(fresh)
    shared = got.keys() & want.keys()
    assert len(shared) >= 0.99 * len(want)  # a link within rounding of zero may flip
    assert max(abs(got[k] - want[k]) for k in shared) < 1e-6
    assert all(abs(v) < 1e-6 for k, v in got.items() if k not in want)


def test_an_erasure_through_the_service_is_exact_for_ease(
    stores: Stores, runtime: PrivacyRuntime, tmp_path: Path
) -> None:
    models: ErasureAwareModelStore = runtime.model_store(tmp_path / "models")
    events, config = _events(seed=4), _config("float64")
    stores.events.append(T, events)
    base = train_tenant(stores.events, models, T, config, privacy=runtime.training()).version
    base_dir = version_dir(models, T, base)
    assert (base_dir / EASE_FILE).exists()
    before = np.array(np.load(base_dir / EASE_FILE))
    registry = BundleRegistry(models, prepare=models.servable)
    service = runtime.erasure(forget_model=lambda t, keys: models.forget(registry, t, keys))

    receipt = service.erase_user(T, "u9")

    assert receipt.model.status == "subtracted" and receipt.model.exact_neighbours
    assert not receipt.retrain_pending, "nothing waits for a retrain"
    served = models.promoted_version(T)
    assert served == receipt.model.version != base
    _, bundle = models.load(T, served)
    fresh, _ = train_bundle([e for e in events if e.user_id != "u9"], config, version="c")
    got, want = _neighbours(bundle), _neighbours(fresh)
    assert got.keys() == want.keys() and max(abs(got[k] - want[k]) for k in want) < 1e-6
    # the new inverse is on disk for both the derived version and the rewritten base (one file),
    # the old one (with the person) is gone, and no scratch file is left behind
    new_dir = version_dir(models, T, str(served))
    index = load_influence(new_dir)
    assert index is not None and index.ease is not None
    after = np.load(new_dir / EASE_FILE)
    assert (new_dir / EASE_FILE).samefile(base_dir / EASE_FILE)
    assert np.abs(after - before).max() > 1e-6
    scratch = list(Path(models.root).rglob(".ease_inverse*"))  # the downdate kept for reuse:
    assert all(p.samefile(new_dir / EASE_FILE) for p in scratch)  # a link, not another copy
    # a second erasure downdates the downdated inverse again
    again = service.erase_user(T, "u11")
    assert again.model.exact_neighbours and not again.retrain_pending
    _, bundle = models.load(T, models.promoted_version(T))
    fresh, _ = train_bundle(
        [e for e in events if e.user_id not in ("u9", "u11")], config, version="d"
    )
    got, want = _neighbours(bundle), _neighbours(fresh)
    assert got.keys() == want.keys() and max(abs(got[k] - want[k]) for k in want) < 1e-6
    # every version on disk was rewritten without both people; those that shared an inverse
    # share the downdated one (computed once, linked)
    versions = [m.version for m in models.list(T)]
    assert len(versions) == 3
    inverses = {version_dir(models, T, v) / EASE_FILE for v in versions}
    served_file = version_dir(models, T, str(models.promoted_version(T))) / EASE_FILE
    assert all(f.samefile(served_file) for f in inverses)
    for version in versions:
        _, stored = models.load(T, version)
        assert _neighbours(stored).keys() == want.keys(), version


def test_ranking_only_the_candidates_a_previous_top_k_leaves_is_exact() -> None:
    """``neighbours_from_inverse(previous=...)`` ranks only the entries that can reach a row's
    top-k; the result is the full ranking's."""
    rng = np.random.default_rng(7)
    x = sp.csr_matrix((rng.random((300, 120)) < 0.08).astype(np.float64))
    p = _inverse(x, 4.0)
    before = neighbours_from_inverse(p, 10)
    out = np.empty_like(p)
    downdate_inverse(p, x[[3, 50]], out)
    full, fast = neighbours_from_inverse(out, 10), neighbours_from_inverse(out, 10, before)
    assert (full != before).nnz > 0, "the downdate changed the neighbours"
    assert abs(full - fast).max() < 1e-7 and (full != 0).nnz == (fast != 0).nnz
    assert (neighbours_from_inverse(out, 10, sp.csr_matrix(p.shape)) != full).nnz == 0


def test_a_failed_training_leaves_no_inverse_behind(
    stores: Stores, runtime: PrivacyRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = runtime.model_store(tmp_path / "models")
    stores.events.append(T, _events(seed=5))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("popularity failed")

    monkeypatch.setattr("personify.jobs.training.decayed_popularity", broken)
    with pytest.raises(RuntimeError):
        train_tenant(stores.events, models, T, _config(), privacy=runtime.training())
    assert not list(Path(models.root).rglob(EASE_FILE))
