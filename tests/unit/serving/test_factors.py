"""The ``factors`` source: ALS item factors in the bundle, user vectors folded in at ingest and
stored in the online state (in-process and Redis), the source's answers and reasons, erasure,
bundles without factors, and the fold-in checked against the ``implicit`` library itself."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from personify.data.events import EventWeights, interactions_from_events
from personify.data.vocabulary import Vocabulary
from personify.domain.errors import InvalidInput
from personify.domain.events import Event
from personify.domain.items import Item
from personify.jobs import training
from personify.jobs.training import TrainingConfig, fit_factors, train_bundle
from personify.serving.bundle import ModelBundle
from personify.serving.catalog import CatalogSnapshot
from personify.serving.chain import RecommendationService
from personify.serving.explanations import sentence
from personify.serving.factor_source import FactorSource, UserVectorUpdater
from personify.serving.factors import FactorModel, top_indices
from personify.serving.request import RecommendationRequest
from personify.serving.source_registry import source_registry
from personify.storage.model_files import FileModelStore, ModelManifest
from personify.storage.online.memory import MemoryOnlineState
from personify.storage.online.port import Interaction, OnlineState

T = "shop"
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
A = [f"a{i}" for i in range(10)]
B = [f"b{i}" for i in range(10)]
WEIGHTS = {"view": 1.0, "click": 2.0, "purchase": 8.0, "dislike": -4.0}
_n = iter(range(1_000_000))


def event(user: str, item: str, kind: str = "view", minutes: float = 0) -> Event:
    return Event(
        event_id=f"e{next(_n)}",
        type=kind,
        user_id=user,
        item_id=item,
        timestamp=NOW + timedelta(minutes=minutes),
    )


def factor_bundle(version: str = "f1", noise: float = 0.05) -> ModelBundle:
    """Two taste groups: items a* along the first latent axis, b* along the second."""
    rng = np.random.default_rng(7)
    y = np.zeros((20, 6), np.float32)
    y[:10, 0], y[10:, 1] = 1.0, 1.0
    y += rng.normal(0, noise, y.shape).astype(np.float32)
    factors = FactorModel.build(
        version, y, regularization=0.1, alpha=5.0, event_weights=WEIGHTS
    )
    return ModelBundle(
        version="v1",
        items=Vocabulary(A + B),
        neighbours=sp.csr_matrix((20, 20), dtype=np.float32),
        popularity=np.zeros(20, np.float32),
        factors=factors,
    )


def catalog() -> CatalogSnapshot:
    return CatalogSnapshot([Item(item_id=i, title=f"Item {i}") for i in A + B])


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def state(request: pytest.FixtureRequest) -> Iterator[OnlineState]:
    if request.param == "memory":
        yield MemoryOnlineState()
        return
    from personify.storage.online.redis import RedisOnlineState

    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    opened = RedisOnlineState.from_url(url, prefix)
    yield opened
    opened.close()


def service(state: OnlineState, bundle: ModelBundle) -> RecommendationService:
    cat = catalog()
    return RecommendationService(
        bundles=lambda t: bundle,
        catalogs=lambda t: cat,
        state=state,
        source_order=["factors"],
        clock=lambda: datetime.now(UTC),
    )


def ingest(state: OnlineState, updater: UserVectorUpdater, events: list[Event]) -> None:
    """What the engine's ingestion listener does: apply, then fold the subjects in."""
    state.apply(T, events)
    updater.update(T, events)


def ids(svc: RecommendationService, user: str, n: int = 5) -> list[str]:
    request = RecommendationRequest(user_id=user, n=n, log_impression=False)
    return [i.item_id for i in svc.recommend(T, request).items]


# -- ingest -> vector -> next answer ----------------------------------------------------------


def test_a_click_changes_the_user_vector_and_the_next_answer(state: OnlineState) -> None:
    bundle = factor_bundle()
    updater = UserVectorUpdater(state, lambda t: bundle)
    svc = service(state, bundle)
    ingest(state, updater, [event("u1", "a0"), event("u1", "a1", minutes=1),
                            event("u1", "a2", minutes=2)])
    before = state.get_user_vector(T, "f1", "u1")
    assert before is not None and before.shape == (6 + 2,)  # the vector and its fingerprint
    first = ids(svc, "u1")
    assert len(first) == 5 and all(i.startswith("a") for i in first)
    assert not {"a0", "a1", "a2"} & set(first)

    ingest(state, updater, [event("u1", "b0", "click", 3), event("u1", "b1", "purchase", 4),
                            event("u1", "b0", "click", 5)])
    after = state.get_user_vector(T, "f1", "u1")
    assert after is not None and not np.allclose(before, after)
    assert after[1] > before[1] + 0.1  # pulled towards the b* axis
    second = ids(svc, "u1")
    assert second[:3] and all(i.startswith("b") for i in second[:3]), second
    assert not {"b0", "b1"} & set(second)  # what was clicked / bought is not offered again
    result = svc.recommend(T, RecommendationRequest(user_id="u1", n=3, explain=True,
                                                    log_impression=False))
    assert result.sources == ["factors"]
    assert [i.item_id for i in result.items] == second[:3]  # explaining changes no ranking
    top = result.items[0]
    assert top.source == "factors" and top.reasons[0]["source"] == "factors"
    assert top.reasons[0]["type"] == "because_you_bought" and top.reasons[0]["item_id"] == "b1"
    assert top.explanation == "Because you bought Item b1"


def test_vector_in_the_state_is_what_the_source_scores(state: OnlineState) -> None:
    bundle = factor_bundle()
    factors = bundle.factors
    assert factors is not None
    svc = service(state, bundle)
    state.apply(T, [event("u2", "a0"), event("u2", "a1", minutes=1)])
    folded = ids(svc, "u2")  # no stored vector: folded in on the fly from the history
    assert all(i.startswith("a") for i in folded)
    idx, w = factors.history_row(bundle.items, state.user_state(T, "u2").recent)
    towards_b = np.array([0, 3, 0, 0, 0, 0], np.float32)
    # a stored vector folded from this very history is what the source scores ...
    state.set_user_vector(T, "f1", "u2", factors.pack(towards_b, idx, w))
    assert all(i.startswith("b") for i in ids(svc, "u2"))
    # ... not one stored for other factors (another training) ...
    assert bundle.factors is not None
    other = replace(bundle, factors=replace(bundle.factors, version="f0"))
    assert ids(service(state, other), "u2") == folded
    # ... nor one without a fingerprint ...
    state.set_user_vector(T, "f1", "u2", towards_b)
    assert ids(svc, "u2") == folded
    # ... nor one folded from a history that has changed since (an event not folded in)
    state.set_user_vector(T, "f1", "u2", factors.pack(towards_b, idx, w))
    state.apply(T, [event("u2", "a5", minutes=2)])
    assert all(i.startswith("a") for i in ids(svc, "u2"))


def test_a_merged_history_is_never_served_from_a_stale_vector(state: OnlineState) -> None:
    bundle = factor_bundle()
    updater = UserVectorUpdater(state, lambda t: bundle)
    svc = service(state, bundle)
    ingest(state, updater, [event("u7", "a0"), event("u7", "a1", minutes=1)])
    anonymous = [Event(event_id=f"s{k}", type="view", anonymous_id="visit", item_id=i,
                       timestamp=NOW + timedelta(minutes=2 + k))
                 for k, i in enumerate(["b0", "b1", "b2"])]
    ingest(state, updater, anonymous)
    assert all(i.startswith("a") for i in ids(svc, "u7"))
    state.merge_users(T, "anon:visit", "u7")  # keeps u7's own (now stale) stored vector
    merged = ids(svc, "u7")
    assert merged[0].startswith("b") and not {"a0", "a1", "b0", "b1", "b2"} & set(merged)


def test_bulk_batches_fold_in_a_bounded_number_of_subjects(state: OnlineState) -> None:
    bundle = factor_bundle()
    updater = UserVectorUpdater(state, lambda t: bundle, max_subjects=2)
    batch = [event(f"bulk{k}", "b2", "purchase", k) for k in range(3)]
    state.apply(T, batch)
    assert updater.update(T, batch) == 2
    assert state.get_user_vector(T, "f1", "bulk0") is not None
    assert state.get_user_vector(T, "f1", "bulk2") is None
    assert ids(service(state, bundle), "bulk2")[0].startswith("b")  # folded on the fly


def test_updater_skips_bundles_without_factors_and_unknown_items(state: OnlineState) -> None:
    bundle = replace(factor_bundle(), factors=None)
    updater = UserVectorUpdater(state, lambda t: bundle)
    state.apply(T, [event("u3", "a0")])
    assert updater.update(T, [event("u3", "a0")]) == 0
    with_factors = factor_bundle()
    updater = UserVectorUpdater(state, lambda t: with_factors)
    state.apply(T, [event("u4", "zz-unknown")])
    assert updater.update(T, [event("u4", "zz-unknown")]) == 0
    assert state.get_user_vector(T, "f1", "u4") is None


def test_erasure_drops_the_user_vector_at_once(state: OnlineState) -> None:
    bundle = factor_bundle()
    updater = UserVectorUpdater(state, lambda t: bundle)
    ingest(state, updater, [event("gone", "b3", "purchase"), event("stays", "a3")])
    assert state.get_user_vector(T, "f1", "gone") is not None
    state.forget_user(T, "gone")
    assert state.get_user_vector(T, "f1", "gone") is None
    assert state.get_user_vector(T, "f1", "stays") is not None
    assert ids(service(state, bundle), "gone") == []


def test_generic_reason_when_no_history_item_dominates() -> None:
    bundle = factor_bundle(noise=0.0)
    state = MemoryOnlineState()
    # equal views of five identical items per group: each explains a fifth of a score
    state.apply(T, [event("u5", i, minutes=k) for k, i in enumerate(A[:5] + B[:5])])
    result = service(state, bundle).recommend(
        T, RecommendationRequest(user_id="u5", n=4, explain=True, language="ru",
                                 log_impression=False))
    assert result.items
    assert {i.reasons[0]["type"] for i in result.items} == {"matches_your_taste"}
    assert result.items[0].explanation == "Соответствует вашему вкусу"


# -- the maths ------------------------------------------------------------------------------


def test_history_row_sums_training_weights_and_drops_negative_and_unknown() -> None:
    bundle = factor_bundle()
    history = [
        Interaction("a1", "view", NOW), Interaction("a1", "click", NOW),
        Interaction("a2", "view", NOW), Interaction("a2", "dislike", NOW),
        Interaction("b4", "purchase", NOW), Interaction("nope", "purchase", NOW),
        Interaction("a3", "impression", NOW),
    ]
    factors = bundle.factors
    assert factors is not None
    idx, w = factors.history_row(bundle.items, history)
    assert dict(zip(bundle.items.lookup(idx), w.tolist(), strict=True)) == {"a1": 3.0, "b4": 8.0}
    binary = replace(factors, binary=True)
    assert binary.history_row(bundle.items, history)[1].tolist() == [1.0, 1.0]


def test_fingerprint_ties_a_stored_vector_to_its_history_row() -> None:
    factors = factor_bundle().factors
    assert factors is not None
    idx, w = np.array([3, 1, 12], np.int64), np.array([1.0, 2.0, 8.0])
    stored = factors.pack(factors.fold_in(idx, w), idx, w)
    np.testing.assert_array_equal(factors.unpack(stored, idx[::-1], w[::-1]),
                                  factors.fold_in(idx, w))  # row order does not matter
    assert factors.unpack(stored, idx, np.array([1.0, 2.0, 9.0])) is None
    assert factors.unpack(stored, idx[:2], w[:2]) is None
    assert factors.unpack(stored[:-1], idx, w) is None


@pytest.mark.parametrize("seed", range(40))
def test_top_indices_is_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size, n = int(rng.integers(1, 60_000)), int(rng.integers(1, 400))
    scores = rng.standard_normal(size).astype(np.float32)
    if seed % 3 == 0:
        scores = np.round(scores, 1)  # many ties
    if seed % 4 == 0:
        scores[rng.integers(0, size, size // 3)] = -np.inf
    got = top_indices(scores, n)
    want = np.argsort(-scores, kind="stable")[: min(n, size)]
    assert len(set(got.tolist())) == len(want)
    np.testing.assert_array_equal(scores[got], scores[want])


def test_score_splits_exactly_into_history_contributions() -> None:
    factors = factor_bundle().factors
    assert factors is not None
    idx, w = np.array([0, 4, 12], np.int64), np.array([1.0, 3.0, 8.0])
    vector, contrib = factors.explained(idx, w)
    np.testing.assert_allclose(vector, factors.fold_in(idx, w), rtol=1e-5, atol=1e-6)
    scores = factors.item_factors.astype(np.float64) @ vector.astype(np.float64)
    parts = factors.item_factors.astype(np.float64) @ contrib
    np.testing.assert_allclose(parts.sum(axis=1), scores, rtol=1e-4, atol=1e-5)
    top, top_scores = factors.top(vector, 5, exclude=idx)
    assert not set(top.tolist()) & {0, 4, 12} and np.all(np.diff(top_scores) <= 0)


def _als_data() -> tuple[list[Event], list[Event]]:
    rng = np.random.default_rng(3)
    kinds = ["view", "view", "click", "purchase", "dislike"]
    events = [
        Event(event_id=f"t{k}", type=str(rng.choice(kinds)), user_id=f"u{rng.integers(60)}",
              item_id=f"i{rng.integers(80)}", timestamp=NOW - timedelta(days=3, minutes=k))
        for k in range(1500)
    ]
    live = [
        event("new", "i3", "view"), event("new", "i3", "click", 1), event("new", "i9", "view", 2),
        event("new", "i40", "purchase", 3), event("new", "i41", "dislike", 4),
        event("new", "i41", "view", 5), event("new", "i77", "view", 6),
    ]
    return events, live


def test_fold_in_equals_implicit_recalculate_user() -> None:
    pytest.importorskip("implicit")
    from personify.algorithms.als import ALS

    events, live = _als_data()
    config = TrainingConfig(factors=12, factor_params={"iterations": 6, "alpha": 4.0,
                                                       "regularization": 0.3})
    data = interactions_from_events(events, config.weights)
    factors = fit_factors(data, config, "f")
    assert factors.item_factors.dtype == np.float32 and factors.item_factors.shape == (80, 12)
    history = [Interaction(e.item_id or "", e.type, e.timestamp) for e in reversed(live)]
    idx, weights = factors.history_row(data.items, history)
    mine = factors.fold_in(idx, weights)

    # the same row as training builds it (summed event weights per item), through implicit
    row = interactions_from_events(live, config.weights, items=data.items).matrix.tocsr()
    model = ALS(factors=12, iterations=6, alpha=4.0, regularization=0.3)
    model.item_factors_ = factors.item_factors
    model.user_factors_ = np.zeros((1, 12), np.float32)
    theirs = model.user_vectors(np.array([0]), row)[0]
    np.testing.assert_allclose(mine, theirs, rtol=2e-3, atol=2e-4)

    from implicit.cpu.als import AlternatingLeastSquares

    raw = AlternatingLeastSquares(factors=12, regularization=0.3, alpha=4.0)
    raw.item_factors = factors.item_factors
    raw.user_factors = np.zeros((1, 12), np.float32)
    positive = row.copy()
    positive.data[positive.data < 0] = 0
    positive.eliminate_zeros()
    want_ids, _ = raw.recommend(0, positive, N=10, recalculate_user=True)
    np.testing.assert_array_equal(np.sort(idx), positive.indices)
    got_ids, _ = factors.top(mine, 10, exclude=idx)
    assert len(got_ids) >= 5
    assert got_ids.tolist() == [int(i) for i in want_ids][: len(got_ids)]


# -- training, artifacts and old bundles ------------------------------------------------------


def test_training_stores_factors_that_survive_the_model_store(tmp_path: Path) -> None:
    pytest.importorskip("implicit")
    events, _ = _als_data()
    config = TrainingConfig(model="itemknn", params={"k": 20}, learn_blend=False, factors=8)
    bundle, manifest = train_bundle(events, config)
    assert bundle.factors is not None and bundle.factors.version == bundle.version
    assert bundle.factors.item_factors.shape == (bundle.items.__len__(), 8)
    assert bundle.factors.regularization == config.factor_params["regularization"]
    assert manifest.params["factors"]["k"] == 8
    store = FileModelStore(tmp_path)
    manifest.tenant = T
    store.save(T, bundle, manifest)
    _, loaded = store.load(T, bundle.version)
    np.testing.assert_array_equal(loaded.factors.item_factors, bundle.factors.item_factors)
    off, _ = train_bundle(events, replace(config, factors=None))
    assert off.factors is None


def test_factors_default_on_only_with_the_training_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(training.importlib.util, "find_spec", lambda name: None)
    assert TrainingConfig().factors is None
    monkeypatch.setattr(training.importlib.util, "find_spec", lambda name: object())
    assert TrainingConfig().factors == training.DEFAULT_FACTORS


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"factors": 1}, "factors"), ({"factors": 1000}, "factors"),
     ({"factors": True}, "factors"), ({"factor_params": {"learning_rate": 1}}, "factor_params")],
)
def test_invalid_factor_settings_are_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        TrainingConfig(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_bundles_saved_without_factors_still_load_and_serve(tmp_path: Path) -> None:
    bundle = replace(factor_bundle(), factors=None, popularity=np.arange(20, dtype=np.float32))
    del bundle.__dict__["factors"]  # exactly what an artifact from before the field holds
    assert "factors" not in pickle.loads(pickle.dumps(bundle)).__dict__
    store = FileModelStore(tmp_path)
    store.save(T, bundle, ModelManifest(version="v1", tenant=T, created_at=NOW.isoformat()))
    _, loaded = store.load(T, "v1")
    assert loaded.factors is None
    state = MemoryOnlineState()
    updater = UserVectorUpdater(state, lambda t: loaded)
    ingest(state, updater, [event("u6", "a1")])
    cat = catalog()
    svc = RecommendationService(bundles=lambda t: loaded, catalogs=lambda t: cat, state=state)
    result = svc.recommend(T, RecommendationRequest(user_id="u6", n=5, log_impression=False))
    assert len(result.items) == 5 and "factors" not in result.sources
    scope_free = FactorSource()  # and the source itself answers nothing for such a bundle
    assert scope_free.personal and not updater.update(T, [event("u6", "a2")])


def test_factors_is_a_registered_personal_source_with_texts() -> None:
    source = source_registry().sources()["factors"]
    assert source.personal and "factors" in source_registry().default_order()
    from personify.serving.explanations import Reason

    assert sentence(Reason("matches_your_taste", "factors"), "en") == "Matches your taste"
    assert sentence(Reason("matches_your_taste", "factors"), "ru") == "Соответствует вашему вкусу"


def test_source_skipped_without_personalization_consent() -> None:
    bundle = factor_bundle()
    state = MemoryOnlineState()
    ingest(state, UserVectorUpdater(state, lambda t: bundle), [event("no", "a1")])
    cat = catalog()
    svc = RecommendationService(
        bundles=lambda t: bundle, catalogs=lambda t: cat, state=state,
        personalization_allowed=lambda t, u: False,
    )
    result = svc.recommend(T, RecommendationRequest(user_id="no", n=5, log_impression=False))
    assert "factors" not in result.sources and result.personalized is False


def test_event_weights_used_for_training_rows_include_ratings() -> None:
    pytest.importorskip("implicit")
    events, _ = _als_data()
    config = TrainingConfig(factors=4, factor_params={"iterations": 2},
                            weights=EventWeights(rating_scale=1.5))
    factors = fit_factors(interactions_from_events(events, config.weights), config, "f")
    assert factors.event_weights["rating"] == 1.5 and factors.event_weights["purchase"] == 8.0
