"""Experiments on the recommendation path: the variant's payload shapes the request, and the
exposure is logged with the recommendation id only when items were shown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from personify.domain.items import Item
from personify.experiments.definitions import parse_experiment
from personify.experiments.service import create_experiment, start_experiment
from personify.runtime.experiment_serving import (
    affects_serving,
    apply_variant,
    non_personal_sources,
    recommend_in_experiments,
)
from personify.runtime.experiments import ExperimentsRuntime, open_experiments
from personify.serving.catalog_cache import CatalogCache
from personify.serving.chain import RecommendationService
from personify.serving.request import RecommendationRequest
from personify.storage.online.memory import MemoryOnlineState
from personify.storage.registry import Stores, open_stores

T = "default"


@pytest.fixture
def stores() -> Iterator[Stores]:
    with open_stores("memory://") as opened:
        opened.catalog.upsert(T, [Item(item_id=f"i{n}", title=f"item {n}") for n in range(20)])
        yield opened


@pytest.fixture
def service(stores: Stores) -> RecommendationService:
    return RecommendationService(
        bundles=lambda tenant: None,
        catalogs=CatalogCache(stores.catalog).get,
        state=MemoryOnlineState(),
    )


@pytest.fixture
def runtime(stores: Stores) -> ExperimentsRuntime:
    rt = open_experiments(stores.engine_url, database=stores.database)
    create_experiment(
        rt.experiments,
        T,
        {
            "name": "blocks",
            "variants": [
                {"name": "control", "payload": {"personalized": False}},
                {"name": "fresh", "payload": {"sources": ["new_items"], "mmr_lambda": 0.5}},
                {"name": "model", "payload": {"model": "ease"}},
            ],
            "primary_metric": {"name": "ctr", "kind": "ratio"},
            "holdout": 0.1,
            "sequential": True,
        },
    )
    create_experiment(
        rt.experiments,
        T,
        {
            "name": "subject-lines",
            "layer": "email",
            "variants": [{"name": "a", "payload": {"template": "x"}},
                         {"name": "b", "payload": {"template": "y"}}],
            "primary_metric": {"name": "clicks", "kind": "mean"},
            "sequential": True,
        },
    )
    start_experiment(rt.experiments, T, "blocks")
    start_experiment(rt.experiments, T, "subject-lines")
    return rt


def test_variants_shape_the_request_and_exposures_carry_the_recommendation_id(
    runtime: ExperimentsRuntime, service: RecommendationService
) -> None:
    seen: dict[str | None, int] = {}
    for i in range(120):
        request = RecommendationRequest(anonymous_id=f"v{i}", n=5)
        result, assignments = recommend_in_experiments(runtime, service, T, request)
        (a,) = assignments  # the e-mail experiment never enters the recommendation path
        assert a.experiment == "blocks"
        seen[a.variant] = seen.get(a.variant, 0) + 1
        assert result.items
        if a.variant == "control":
            assert set(result.sources) <= set(non_personal_sources(service))
        elif a.variant == "fresh":
            assert result.sources == ["new_items"]
        elif a.variant == "model":
            assert any("model 'ease' not applied" in w for w in result.warnings)
        exposures = {x.unit: x for x in runtime.exposures.exposures(T, "blocks")}
        if a.variant is None:
            assert a.unit not in exposures  # holdout units are served the default, not analyzed
        elif a.variant == "model":
            # no pinned bundles here: the unit did not see its variant, so it is not exposed
            assert a.unit not in exposures
        else:
            assert exposures[a.unit].recommendation_id == result.recommendation_id
            assert exposures[a.unit].variant == a.variant
    assert set(seen) == {"control", "fresh", "model", None}
    assert runtime.exposures.exposures(T, "subject-lines") == []


def test_no_exposure_without_an_impression(
    runtime: ExperimentsRuntime, service: RecommendationService
) -> None:
    request = RecommendationRequest(anonymous_id="quiet", n=5, log_impression=False)
    _, assignments = recommend_in_experiments(runtime, service, T, request)
    assert assignments and runtime.exposures.exposures(T, "blocks") == []


def test_anonymous_requests_without_experiments_pass_through(
    stores: Stores, service: RecommendationService
) -> None:
    rt = open_experiments(stores.engine_url, database=stores.database)
    result, assignments = recommend_in_experiments(
        rt, service, T, RecommendationRequest(anonymous_id="x", n=3)
    )
    assert assignments == [] and len(result.items) == 3


def test_apply_variant() -> None:
    request = RecommendationRequest(user_id="u", n=4)
    same, notes = apply_variant(request, {}, fallback_sources=["popular"])
    assert same is request and notes == []
    off, _ = apply_variant(request, {"personalized": False}, fallback_sources=["popular"])
    assert off.sources == ["popular"] and off.user_id == "u" and off.n == 4
    diverse, _ = apply_variant(
        request, {"max_per_category": 2, "mmr_lambda": 0.3}, fallback_sources=[]
    )
    assert diverse.diversity.max_per_category == 2 and diverse.diversity.mmr_lambda == 0.3
    email = parse_experiment(
        {"name": "e", "variants": [{"name": "a", "payload": {"template": "t"}}, {"name": "b"}],
         "primary_metric": {"name": "clicks"}, "sequential": True}
    )
    assert not affects_serving(email)
