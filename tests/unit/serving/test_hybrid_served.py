"""The hybrid model (``algorithms/hybrid.py``: item-kNN and popularity, plus content when the
data carry item text, blended with weights learned on a validation split) is served: it is a
registered model, so ``personify train --model hybrid`` (its item similarities become the
served neighbours) and ``--user-model hybrid`` (its scores become each trained person's list)
put it in the bundle, and the chain answers from it."""

from __future__ import annotations

from datetime import timedelta

from test_chain import NOW, T, _click, _history, _items

from personify.algorithms import available_models, create_model
from personify.algorithms.hybrid import HybridRecommender
from personify.jobs.training import TrainingConfig, train_bundle
from personify.serving.catalog import CatalogSnapshot
from personify.serving.chain import RecommendationService
from personify.serving.request import RecommendationRequest
from personify.storage.online.memory import MemoryOnlineState


def test_hybrid_trains_into_a_served_bundle() -> None:
    assert "hybrid" in available_models()
    assert isinstance(create_model("hybrid"), HybridRecommender)
    history = _history()
    bundle, _ = train_bundle(history, TrainingConfig(
        model="hybrid", params={}, user_model="hybrid", user_params={}, learn_blend=False,
        train_ranker=False,
        factors=None))
    assert bundle.model_name == "hybrid"
    assert bundle.neighbours.nnz > 0
    lists = bundle.user_lists
    assert lists is not None and lists.model_name == "hybrid"
    assert list(lists.users.ids) == [f"u{k}" for k in range(30)]  # every trained person
    state = MemoryOnlineState()
    state.apply(T, history, now=NOW - timedelta(days=5))
    _click(state, "newcomer", "i3")  # someone new: served through the hybrid's neighbours
    catalog = CatalogSnapshot(_items())
    service = RecommendationService(bundles=lambda t: bundle, catalogs=lambda t: catalog,
                                    state=state, clock=lambda: NOW)
    answer = service.recommend(T, RecommendationRequest(
        user_id="newcomer", n=3, sources=["collaborative"]))
    ids = [i.item_id for i in answer.items]
    assert ids and answer.sources == ["collaborative"], answer.warnings
    assert all(int(i[1:]) < 20 for i in ids), ids
