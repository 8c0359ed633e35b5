"""Per-person lists precomputed by the user model at training time: what the collaborative source
serves for a trained person, how a later click is folded in, who has no list, and erasure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from personify.data.events import interactions_from_events
from personify.data.vocabulary import Vocabulary
from personify.domain.events import Event
from personify.domain.items import Item
from personify.jobs.training import TrainingConfig, train_bundle
from personify.privacy.erasure import ErasureResult
from personify.privacy.model_influence import ModelForgetResult, forget_rows, influence_of
from personify.serving.bundle import ModelBundle
from personify.serving.catalog import CatalogSnapshot
from personify.serving.chain import RecommendationService
from personify.serving.request import RecommendationRequest
from personify.serving.sources import CollaborativeSource, RequestScope
from personify.serving.user_lists import UserLists
from personify.storage.online.memory import MemoryOnlineState

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
T = "default"


def _history() -> list[Event]:
    """Two taste groups over 40 items: even people view items 0..19, odd people 20..39."""
    rng = np.random.default_rng(7)
    events, n = [], 0
    for u in range(30):
        base = 0 if u % 2 == 0 else 20
        for item in rng.choice(20, size=8, replace=False):
            n += 1
            events.append(Event(event_id=f"h{n}", type="view", user_id=f"u{u}",
                                item_id=f"i{base + int(item)}",
                                timestamp=NOW - timedelta(days=5, minutes=n)))
    return events


def _catalog() -> CatalogSnapshot:
    return CatalogSnapshot([Item(item_id=f"i{i}", title=f"Item {i}") for i in range(40)])


def _setup(config: TrainingConfig) -> tuple[ModelBundle, MemoryOnlineState, RecommendationService]:
    history = _history()
    bundle, _ = train_bundle(history, config)
    state = MemoryOnlineState()
    state.apply(T, history, now=NOW - timedelta(days=5))
    catalog = _catalog()
    service = RecommendationService(bundles=lambda t: bundle, catalogs=lambda t: catalog,
                                    state=state, clock=lambda: NOW)
    return bundle, state, service


def _scope(bundle: ModelBundle, state: MemoryOnlineState, user: str) -> RequestScope:
    request = RecommendationRequest(user_id=user, n=10)
    return RequestScope(T, request, user, None, state.user_state(T, user, now=NOW), bundle,
                        state, _catalog(), NOW, True)


ITEMKNN = TrainingConfig(model="itemknn", params={"k": 20}, user_model="rp3beta",
                         user_params={"k": 50}, factors=None, learn_blend=False)


def test_default_training_lists_every_person_with_the_best_offline_model() -> None:
    bundle, _ = train_bundle(_history(), TrainingConfig(factors=None, learn_blend=False))
    lists = bundle.user_lists
    assert lists is not None and lists.model_name == "bspm"
    assert len(lists) == 30
    for user in ("u0", "u1"):
        row = lists.row(user)
        assert row is not None
        items, scores, _ = row
        assert np.all(np.diff(scores) <= 0), "best first"
        group = [int(bundle.items.ids[i][1:]) >= 20 for i in items[:5]]
        assert all(g == (user == "u1") for g in group), "a person's list stays in their taste"


def test_a_trained_person_is_served_their_list_with_anchored_reasons() -> None:
    bundle, state, _ = _setup(ITEMKNN)
    lists = bundle.user_lists
    assert lists is not None
    row = lists.row("u0")
    assert row is not None
    seen = {e.item_id for e in _history() if e.user_id == "u0"}
    listed = bundle.items.lookup(row[0])
    assert not seen & set(listed), "trained history is excluded from the list"
    found = CollaborativeSource().candidates(_scope(bundle, state, "u0"), 10)
    assert [s.item_id for s in found] == listed[:10]
    for scored in found:
        if scored.reason.type == "because_you_viewed":
            anchor = scored.reason.params["item_id"]
            assert anchor in seen
            assert scored.item_id in dict(bundle.similar(anchor, 100))
        else:
            assert scored.reason.type == "people_like_you"


def test_a_click_after_training_is_folded_into_the_list() -> None:
    _, state, service = _setup(ITEMKNN)
    before = service.recommend(T, RecommendationRequest(user_id="u0", n=10, explain=True))
    assert all(int(i.item_id[1:]) < 20 for i in before.items[:5])
    state.apply(T, [Event(event_id="c1", type="click", user_id="u0", item_id="i25",
                          timestamp=NOW - timedelta(minutes=1))], now=NOW)
    after = service.recommend(T, RecommendationRequest(user_id="u0", n=10, explain=True))
    ids = [i.item_id for i in after.items]
    assert "i25" not in ids
    cited = [i for i in after.items
             if any(r.get("item_id") == "i25" for r in i.reasons)]
    assert cited, f"the clicked item's neighbours join the answer and cite it: {ids}"
    assert all(int(i.item_id[1:]) >= 20 for i in cited)


def test_people_beyond_the_cap_are_served_by_the_neighbour_fold_in() -> None:
    capped = TrainingConfig(model="itemknn", params={"k": 20}, user_model="rp3beta",
                            user_params={"k": 50}, factors=None, learn_blend=False, list_users=4)
    bundle, state, _ = _setup(capped)
    lists = bundle.user_lists
    assert lists is not None
    listed = [u for u in lists.users.ids if lists.row(u) is not None]
    assert len(listed) == 4
    # the most recently active people are listed: the history runs backwards in time
    assert set(listed) == {"u0", "u1", "u2", "u3"}
    found = CollaborativeSource().candidates(_scope(bundle, state, "u29"), 10)
    assert found and all(s.reason.type == "because_you_viewed" for s in found)


def test_lists_validate_their_layout() -> None:
    lists = UserLists("m", Vocabulary(["a", "b", "c"]), np.array([0, 2, 2, 3]),
                      np.array([5, 6, 7], np.int32), np.array([3.0, 2.0, 1.0], np.float32),
                      np.array([1, -1, 2], np.int32), 0.0)
    assert lists.row("a")[0].tolist() == [5, 6]  # type: ignore[index]
    assert lists.row("b") is None and lists.row("zz") is None
    with pytest.raises(ValueError, match="indptr"):
        UserLists("m", Vocabulary(["a"]), np.array([0]), np.zeros(0, np.int32),
                  np.zeros(0, np.float32), np.zeros(0, np.int32), 0.0)


def test_erasure_drops_the_lists_and_asks_for_a_retrain() -> None:
    history = _history()
    bundle, _ = train_bundle(history, ITEMKNN)
    data = interactions_from_events(history, items=bundle.items)
    index = influence_of(data, key=lambda u: f"k-{u}")
    new_bundle, new_index = forget_rows(bundle, index, index.rows_of(["k-u0"]), "v2")
    assert new_bundle.user_lists is None, "everyone's list was scored through the erased person"
    assert "k-u0" not in new_index.keys
    def result(model: ModelForgetResult) -> ErasureResult:
        return ErasureResult("u0", "r1", NOW, model=model)

    assert result(ModelForgetResult("subtracted", "v2", True, 1, lists_dropped=True)
                  ).retrain_pending
    assert not result(ModelForgetResult("subtracted", "v2", True, 1)).retrain_pending


def test_large_catalogues_score_fewer_people_per_batch() -> None:
    from personify.jobs.user_lists import BATCH, batch_size

    assert batch_size(40_981) == BATCH
    small = batch_size(1_000_000)
    assert 8 <= small < BATCH and small * 1_000_000 * 4 * 6 <= 1 << 30
    assert batch_size(100_000_000) == 8


def test_list_building_reports_progress() -> None:
    seen: list[tuple[int, int]] = []
    bundle, _ = train_bundle(_history(), ITEMKNN, list_progress=lambda d, t: seen.append((d, t)))
    assert bundle.user_lists is not None
    assert seen and seen[-1] == (30, 30), seen
    assert all(t == 30 for _, t in seen) and [d for d, _ in seen] == sorted(d for d, _ in seen)
