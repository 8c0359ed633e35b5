"""A serving source added from outside the package (a plugin): registered once, it is trained
into the bundle, learned by the blend, served, explained and logged as a ranking feature
without any edit to personify."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from personify.domain.events import Event
from personify.domain.items import Item
from personify.jobs.training import TrainingConfig, train_bundle
from personify.serving import source_registry as registry_module
from personify.serving.catalog import CatalogSnapshot
from personify.serving.chain import RecommendationService
from personify.serving.explanations import Reason
from personify.serving.features import feature_names
from personify.serving.request import RecommendationRequest
from personify.serving.source_registry import (
    BlendContext,
    BlendLearning,
    OfflineScorer,
    SourceRegistry,
    SourceSpec,
    TrainingLog,
    UserScores,
    load_plugins,
    source_registry,
)
from personify.serving.sources import RequestScope, Scored
from personify.storage.online.memory import MemoryOnlineState

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
T = "default"
N_ITEMS = 400
ACCESSORY = {f"i{i}": f"i{j}" for i, j in enumerate(np.random.default_rng(7).permutation(N_ITEMS))}
"""The plugin's own knowledge (say, a supplier feed): which item goes with which."""


class AccessorySource:
    """The accessory of each item the person recently looked at (the plugin's source)."""

    name = "accessories"
    personal = True

    def candidates(self, scope: RequestScope, n: int) -> list[Scored]:
        table = scope.bundle.part(self.name) if scope.bundle is not None else None
        if not table or scope.user_state is None:
            return []
        out: dict[str, Scored] = {}
        for rank, inter in enumerate(scope.user_state.recent[:20]):
            other = table.get(inter.item_id)
            if other is not None and other not in out:
                title = scope.catalog.get(inter.item_id)
                out[other] = Scored(other, 1.0 / (1 + rank), Reason(
                    "goes_with", self.name, 1.0 / (1 + rank),
                    {"item_id": inter.item_id, "title": title.title if title else inter.item_id},
                ))
        return list(out.values())[:n]


def train_accessories(log: TrainingLog) -> dict[str, str] | None:
    known = set(log.data.items.ids)
    table = {a: b for a, b in ACCESSORY.items() if a in known}
    return table or None


def offline_accessories(ctx: BlendContext) -> OfflineScorer | None:
    table = ctx.bundle.part("accessories")
    if not table:
        return None
    items = ctx.bundle.items

    def score(user: int, history: NDArray[np.int32], weights: NDArray[np.float64]) -> UserScores:
        out = {}
        for item in items.lookup(history):
            j = items.get(table.get(item, ""))
            if j >= 0:
                out[j] = 1.0
        return out

    return score


def accessory_spec() -> SourceSpec:
    return SourceSpec(
        name="accessories", source=AccessorySource(), personal=True, default_weight=0.5,
        position=45, needs=("accessories",), train=train_accessories,
        explanations={"goes_with": {"en": "Goes well with {title}",
                                    "ru": "Хорошо сочетается с «{title}»"}},
        blend=BlendLearning((0.0, 0.5, 2.0), offline_accessories),
    )


@pytest.fixture
def plugin() -> Iterator[SourceSpec]:
    spec = source_registry().register(accessory_spec())
    try:
        yield spec
    finally:
        source_registry().unregister(spec.name)


def _events() -> list[Event]:
    """Each person views five random items, then the accessory of the first one: only the
    plugin knows that relation (pairs repeat too rarely for co-occurrence to find it)."""
    rng = np.random.default_rng(0)
    events = []
    for u in range(300):
        viewed = [f"i{j}" for j in rng.choice(N_ITEMS, 5, replace=False)]
        viewed.append(ACCESSORY[viewed[0]])
        for k, item in enumerate(viewed):
            events.append(Event(event_id=f"e{u}-{k}", type="view", user_id=f"u{u}",
                                item_id=item, timestamp=NOW - timedelta(days=3, minutes=60 - k)))
    return events


def test_a_plugin_source_is_trained_blended_served_and_explained(plugin: SourceSpec) -> None:
    config = TrainingConfig(model="itemknn", params={"k": 20}, factors=None, user_model=None,
                            train_ranker=False)
    bundle, manifest = train_bundle(_events(), config)
    # trained into the bundle
    assert bundle.part("accessories") == {a: b for a, b in ACCESSORY.items()
                                          if a in set(bundle.items.ids)}
    # learned by the blend: its grid is searched and the clear gain is kept
    learned = manifest.metrics["blend_weights"]
    rates = manifest.metrics["blend_hit_rate@20"]
    assert all("accessories=" in key for key in rates)
    without = max(r for key, r in rates.items() if "accessories=0.0" in key)
    with_it = max(r for key, r in rates.items() if "accessories=0.0" not in key)
    assert with_it > without + 0.2, (with_it, without)
    assert learned["accessories"] > 0 and bundle.source_weights["accessories"] > 0

    # served and explained
    state = MemoryOnlineState()
    state.apply(T, [Event(event_id="now-1", type="view", user_id="fresh", item_id="i5",
                          timestamp=NOW - timedelta(minutes=2))])
    catalog = CatalogSnapshot([Item(item_id=f"i{i}", title=f"Item {i}") for i in range(N_ITEMS)])
    logged: list[Event] = []
    svc = RecommendationService(bundles=lambda t: bundle, catalogs=lambda t: catalog,
                                state=state, clock=lambda: NOW,
                                log_impression=lambda t, e: logged.append(e))
    result = svc.recommend(T, RecommendationRequest(user_id="fresh", n=5, explain=True))
    assert "accessories" in result.sources
    top = result.items[0]
    assert top.item_id == ACCESSORY["i5"]
    assert top.explanation == "Goes well with Item 5"
    assert top.reasons[0] == {"type": "goes_with", "source": "accessories", "item_id": "i5",
                              "title": "Item 5"}
    assert top.scores["accessories"] == 1.0
    # blended at the learned weight
    assert top.score >= bundle.source_weights["accessories"]
    # a ranking feature, logged with the impression
    assert "score_accessories" in feature_names()
    assert logged[0].properties["score_accessories"][0] == 1.0


def test_without_its_trained_part_the_plugin_is_not_asked(plugin: SourceSpec) -> None:
    config = TrainingConfig(model="itemknn", params={"k": 20}, factors=None, user_model=None,
                            learn_blend=False, train_ranker=False)
    bundle, _ = train_bundle(_events()[:12], config)
    bundle.parts = None  # e.g. a bundle trained before the plugin was installed
    state = MemoryOnlineState()
    state.apply(T, [Event(event_id="x", type="view", user_id="p", item_id="i1",
                          timestamp=NOW - timedelta(minutes=1))])
    catalog = CatalogSnapshot([Item(item_id=f"i{i}") for i in range(N_ITEMS)])
    svc = RecommendationService(bundles=lambda t: bundle, catalogs=lambda t: catalog,
                                state=state, clock=lambda: NOW)
    result = svc.recommend(T, RecommendationRequest(user_id="p", n=5))
    assert "accessories" not in result.sources and result.items


def test_plugins_load_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    group = registry_module.ENTRY_POINT_GROUP
    point = EntryPoint("accessories", f"{__name__}:accessory_spec", group)
    broken = EntryPoint("broken", f"{__name__}:does_not_exist", group)

    def registering(registry: SourceRegistry) -> None:
        registry.register(accessory_spec())

    calls: list[Any] = []

    def fake_entry_points(group: str) -> list[EntryPoint]:
        calls.append(group)
        return [broken, point]

    monkeypatch.setattr(registry_module, "entry_points", fake_entry_points)
    monkeypatch.setattr(EntryPoint, "load", lambda self: (
        registering if self.name == "accessories" else (_ for _ in ()).throw(ImportError("x"))
    ))
    registry = SourceRegistry()
    assert load_plugins(registry) == ["accessories"]  # the broken one is logged and skipped
    assert calls == ["personify.sources"] and registry.get("accessories") is not None
    assert registry.sentences("goes_with") == {"en": "Goes well with {title}",
                                               "ru": "Хорошо сочетается с «{title}»"}
