"""Training jobs: bundle from the event store, learned blend, LambdaRank from impressions,
versioned artifacts with promote / rollback, and the hot swap the server performs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from personify.domain.events import Context, Event
from personify.domain.items import Item
from personify.jobs.ranker_training import ranking_data, train_ranker
from personify.jobs.training import TrainingConfig, train_bundle, train_tenant
from personify.serving.bundle import ModelBundle
from personify.serving.catalog import CatalogSnapshot
from personify.serving.chain import RecommendationService
from personify.serving.model_registry import BundleRegistry
from personify.serving.request import RecommendationRequest
from personify.storage.model_files import FileModelStore
from personify.storage.registry import open_stores

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _clustered_events(n_users: int = 60, seed: int = 0) -> list[Event]:
    rng = np.random.default_rng(seed)
    events = []
    for u in range(n_users):
        base = 0 if u % 2 == 0 else 30
        for j in range(10):
            item = base + int(rng.integers(0, 30))
            events.append(
                Event(
                    event_id=f"e{u}-{j}",
                    type="view",
                    user_id=f"u{u}",
                    item_id=f"i{item}",
                    timestamp=NOW - timedelta(hours=100 - j),
                )
            )
    return events


def test_bundle_neighbours_stay_inside_taste_groups() -> None:
    bundle, manifest = train_bundle(_clustered_events(), TrainingConfig(params={"k": 10}))
    assert isinstance(bundle, ModelBundle)
    assert manifest.events_used == 600
    same = total = 0
    for item in ("i3", "i40"):
        for other, _ in bundle.similar(item, 10):
            total += 1
            same += (int(other[1:]) >= 30) == (int(item[1:]) >= 30)
    assert total and same / total > 0.9
    assert set(bundle.source_weights) >= {"collaborative", "popular"}
    assert "blend_weights" in manifest.metrics


def test_train_promote_rollback_and_hot_swap(tmp_path: Path) -> None:
    stores = open_stores("memory://")
    stores.events.append("default", _clustered_events())
    model_store = FileModelStore(tmp_path / "models")
    registry = BundleRegistry(model_store)
    assert registry.get("default") is None  # no model yet: the server still answers
    first = train_tenant(stores.events, model_store, "default", TrainingConfig(learn_blend=False))
    assert registry.refresh() == ["default"]
    assert registry.version("default") == first.version
    stores.events.append(
        "default", [Event(event_id="late", type="view", user_id="u1", item_id="i59", timestamp=NOW)]
    )
    second = train_tenant(stores.events, model_store, "default", TrainingConfig(learn_blend=False))
    assert second.version != first.version
    held = registry.get("default")
    registry.refresh()
    assert registry.version("default") == second.version
    assert held is not None and held.version == first.version, "old references stay usable"
    assert model_store.rollback("default") == first.version
    registry.refresh()
    assert registry.version("default") == first.version
    assert [m.version for m in model_store.list("default")] == [first.version, second.version]


def _impression_log(n: int, seed: int = 0) -> tuple[list[Event], dict[str, Item]]:
    """Users click the cheap item of each impression; the blend scores ignore price."""
    rng = np.random.default_rng(seed)
    items = {
        f"i{k}": Item(item_id=f"i{k}", price=float(k), created_at=NOW - timedelta(days=30))
        for k in range(50)
    }
    events = []
    for r in range(n):
        shown = [f"i{k}" for k in rng.choice(50, 8, replace=False)]
        when = NOW - timedelta(hours=n - r)
        events.append(
            Event(
                event_id=f"imp{r}",
                type="impression",
                user_id=f"u{r % 7}",
                item_ids=shown,
                recommendation_id=f"r{r}",
                timestamp=when,
                context=Context(device="mobile"),
                properties={"score_collaborative": [float(x) for x in rng.random(8)]},
            )
        )
        cheapest = min(shown, key=lambda i: items[i].price or 0)
        events.append(
            Event(
                event_id=f"clk{r}",
                type="click",
                user_id=f"u{r % 7}",
                item_id=cheapest,
                recommendation_id=f"r{r}",
                timestamp=when,
            )
        )
    return events, items


def test_lambdarank_learns_what_the_blend_misses() -> None:
    pytest.importorskip("lightgbm")
    events, items = _impression_log(300)
    data = ranking_data(events, items)
    assert len(data.groups) == 300 and data.labels.sum() == 300
    fit = train_ranker(data, min_groups=50)
    assert fit.ranker is not None, fit.metrics
    assert fit.metrics["valid_ndcg@10_ranker"] > fit.metrics["valid_ndcg@10_blend"] + 0.2


def test_ranker_is_skipped_without_enough_feedback() -> None:
    events, items = _impression_log(10)
    fit = train_ranker(ranking_data(events, items), min_groups=50)
    assert fit.ranker is None and "fewer than" in fit.metrics["skipped"]


def test_scheduler_triggers_on_event_count_and_on_time() -> None:
    from personify.jobs.scheduler import RetrainScheduler

    clock = [0.0]
    runs: list[str] = []
    sched = RetrainScheduler(
        lambda t: runs.append(t) or 0, interval_s=60, every_events=5, clock=lambda: clock[0]
    )
    ev = _clustered_events(1)
    sched.on_events("default", ev[:3])
    assert sched.tick() == []
    sched.on_events("default", ev[3:6])
    assert sched.tick() == ["default"] and runs == ["default"]
    sched.on_events("default", ev[6:7])
    assert sched.tick() == []
    clock[0] = 61.0
    assert sched.tick() == ["default"]
    impression = Event(
        event_id="imp", type="impression", user_id="u", item_ids=["i1"], timestamp=NOW
    )
    sched.on_events("default", [impression] * 10)
    clock[0] = 200.0
    assert sched.tick() == [], "impressions alone never trigger training"


def test_blend_learns_factor_and_interest_weights_with_the_popular_one() -> None:
    pytest.importorskip("implicit")
    from personify.jobs.blend_training import (
        FACTOR_GRID,
        INTEREST_GRID,
        POPULAR_GRID,
        TRENDING_GRID,
    )

    # categories follow the taste groups: the interests source can help
    labels = {f"i{i}": ["left" if i < 30 else "right"] for i in range(60)}
    bundle, manifest = train_bundle(
        _clustered_events(), TrainingConfig(params={"k": 10}), labels=labels
    )
    learned = manifest.metrics["blend_weights"]
    assert learned["factors"] in FACTOR_GRID and learned["popular"] in POPULAR_GRID
    assert learned["interests"] in INTEREST_GRID and learned["trending"] in TRENDING_GRID
    assert bundle.source_weights["factors"] == learned["factors"]
    assert bundle.source_weights["interests"] == learned["interests"]
    rates = manifest.metrics["blend_hit_rate@20"]
    assert len(rates) == (
        len(FACTOR_GRID) * len(POPULAR_GRID) * len(INTEREST_GRID) * len(TRENDING_GRID)
    )
    key = ",".join(f"{name}={learned[name]}" for name in learned if name != "collaborative")
    best = max(rates.values())
    users = manifest.metrics["blend_users"]
    assert rates[key] >= best - (best * (1 - best) / users) ** 0.5 - 1e-9
    # without categories the interests weight is not learned (it keeps its default)
    _, plain = train_bundle(_clustered_events(), TrainingConfig(params={"k": 10}))
    assert "interests" not in plain.metrics["blend_weights"]
    assert len(plain.metrics["blend_hit_rate@20"]) == (
        len(FACTOR_GRID) * len(POPULAR_GRID) * len(TRENDING_GRID)
    )


def test_one_standard_error_rule_prefers_fewer_sources_among_ties() -> None:
    from personify.jobs.blend_training import simplest_within_one_se

    # (popular, factors, interests, trending) -> hit rate over 2,000 people (se ~ 0.0092)
    rates = {
        (0.0, 0.0, 0.0, 0.0): 0.200,   # more than one se below the best
        (0.0, 0.1, 0.0, 0.0): 0.2175,   # best, but factors cost request time
        (0.0, 0.0, 0.0, 0.05): 0.2150,  # within one se, no personal source: chosen
        (0.1, 0.0, 0.0, 0.05): 0.2170,  # within one se, two fallbacks
    }
    personal = (False, True, True, False)
    assert simplest_within_one_se(rates, 2000, personal) == (0.0, 0.0, 0.0, 0.05)
    # a clear gain (beyond one se) is kept
    rates[(0.0, 0.1, 0.0, 0.0)] = 0.240
    assert simplest_within_one_se(rates, 2000, personal) == (0.0, 0.1, 0.0, 0.0)


def test_a_ranker_trained_before_a_feature_was_added_still_scores() -> None:
    lightgbm = pytest.importorskip("lightgbm")
    from personify.serving.features import feature_names

    FEATURE_NAMES = feature_names()
    from personify.serving.ranking import LambdaRankRanker

    events, items = _impression_log(200)
    data = ranking_data(events, items)
    older = tuple(n for n in FEATURE_NAMES if n != "score_factors")
    columns = [FEATURE_NAMES.index(n) for n in older]
    booster = lightgbm.train(
        {"objective": "lambdarank", "verbose": -1, "min_data_in_leaf": 5},
        lightgbm.Dataset(data.features[:, columns], data.labels, group=data.groups),
        num_boost_round=10,
    )
    ranker = LambdaRankRanker(booster.model_to_string(), feature_names=older)
    assert ranker._columns() == columns and "score_factors" in FEATURE_NAMES
    # served through the chain: the ranker scores today's feature matrix by its own columns
    bundle, _ = train_bundle(_clustered_events(), TrainingConfig(params={"k": 10}, factors=None,
                                                                 learn_blend=False))
    bundle.ranker = ranker
    catalog = CatalogSnapshot(list(items.values()) + [Item(item_id=f"i{k}") for k in range(50, 60)])
    service = RecommendationService(bundles=lambda t: bundle, catalogs=lambda t: catalog,
                                    state=None, clock=lambda: NOW)
    result = service.recommend("default", RecommendationRequest(user_id="u1", n=5))
    assert len(result.items) == 5
    ranked = [i.score for i in result.items]
    assert ranked == sorted(ranked, reverse=True)


def test_blend_holdout_does_not_take_file_order_for_time() -> None:
    from personify.data.interactions import Interactions
    from personify.jobs.blend_training import holdout_last, holdout_protocol

    # each person's rows sorted by item id: "last" in the file is always their highest id
    users = [f"u{u}" for u in range(40) for _ in range(6)]
    items = [f"i{u % 7 + j:02d}" for u in range(40) for j in range(6)]
    untimed = Interactions.from_arrays(users, items)
    assert holdout_protocol(untimed) == "per-user random"
    held_users, held_items, keep = holdout_last(untimed, max_users=40, seed=1)
    last_in_file = {int(u): int(untimed.item_idx[untimed.user_idx == u].max())
                    for u in held_users}
    not_last = sum(int(i) != last_in_file[int(u)] for u, i in zip(held_users, held_items,
                                                                  strict=True))
    assert not_last > len(held_users) // 2  # a random event, mostly not the file's last
    assert (~keep).sum() == len(held_users)
    # timestamps running against the file order: the latest event is held out
    stamps = [1e9 - 60.0 * j for _ in range(40) for j in range(6)]
    timed = Interactions.from_arrays(users, items, timestamps=stamps)
    assert holdout_protocol(timed) == "per-user temporal"
    held_users, held_items, _ = holdout_last(timed, max_users=40, seed=1)
    assert timed.timestamps is not None
    for u, i in zip(held_users, held_items, strict=True):
        rows = timed.user_idx == u
        latest = timed.item_idx[rows][np.argmax(timed.timestamps[rows])]
        assert i == latest


def test_purchases_train_the_basket_parts_and_the_blend_learns_bought_together() -> None:
    rng = np.random.default_rng(3)
    events = []
    for u in range(80):
        first = int(rng.integers(0, 20))
        # one order of a pair that goes together, then another order
        for k, (item, order) in enumerate(((first, 0), ((first + 1) % 20, 0),
                                           (int(rng.integers(20, 40)), 1))):
            events.append(Event(event_id=f"p{u}-{k}", type="purchase", user_id=f"u{u}",
                                item_id=f"i{item}", timestamp=NOW - timedelta(days=9 - order)))
    config = TrainingConfig(model="itemknn", params={"k": 20}, factors=None, user_model=None)
    bundle, manifest = train_bundle(events, config)
    assert bundle.part("bought_together") is not None and bundle.part("buy_again") is not None
    assert "bought_together" in manifest.metrics["blend_weights"]
    assert all("bought_together=" in key for key in manifest.metrics["blend_hit_rate@20"])
    views = [e.model_copy(update={"type": "view"}) for e in events]
    plain, manifest = train_bundle(views, config)
    assert set(plain.parts or {}) <= {"session_knn"}, "no basket part without purchases"
    assert "bought_together" not in manifest.metrics["blend_weights"]


def test_the_blend_learns_time_of_day_popularity_and_the_chain_serves_it() -> None:
    from personify.serving.catalog import CatalogSnapshot
    from personify.serving.chain import RecommendationService

    # mornings (08:00 UTC) buy items 0-99, evenings (20:00) items 100-199, both skewed
    rng = np.random.default_rng(5)
    day0 = datetime(2026, 9, 1, tzinfo=UTC)
    events = []
    for u in range(400):
        for k in range(4):
            evening = bool(rng.integers(0, 2))
            item = int(min(99, rng.geometric(0.04) - 1)) + (100 if evening else 0)
            when = day0 + timedelta(days=int(rng.integers(0, 40)) + k * 41,
                                    hours=20 if evening else 8)
            events.append(Event(event_id=f"t{u}-{k}", type="view", user_id=f"u{u}",
                                item_id=f"i{item}", timestamp=when))
    config = TrainingConfig(model="itemknn", params={"k": 20}, factors=None, user_model=None)
    bundle, manifest = train_bundle(events, config)
    learned = manifest.metrics["blend_weights"]
    rates = manifest.metrics["blend_hit_rate@20"]
    off = max(r for key, r in rates.items() if "time_of_day=0.0" in key)
    on = max(r for key, r in rates.items() if "time_of_day=0.0" not in key)
    assert on > off + 0.03, (on, off)
    assert learned["time_of_day"] > 0
    catalog = CatalogSnapshot([Item(item_id=f"i{i}") for i in range(200)])
    for hour, low in ((8, 0), (20, 100)):
        svc = RecommendationService(
            bundles=lambda t: bundle, catalogs=lambda t: catalog, state=None,
            clock=lambda hour=hour: datetime(2026, 12, 1, hour, tzinfo=UTC))
        result = svc.recommend("default", RecommendationRequest(n=5, sources=["time_of_day"],
                                                                explain=True))
        assert all(low <= int(i.item_id[1:]) < low + 100 for i in result.items)
        assert result.items[0].explanation == "Popular at this time of day"


def test_many_learned_sources_are_searched_by_coordinate_ascent() -> None:
    from personify.jobs.blend_training import MAX_GRID, _Person, _search

    # the held-out item (the last of 40) is scored only by the third source
    table = np.zeros((40, 6), dtype=np.float32)
    table[:, 0] = np.linspace(1.0, 0.0, 40)  # the reference ranks it last
    table[39, 2] = 1.0
    people = [_Person(np.arange(40, dtype=np.int64), table, 39) for _ in range(20)]
    grids = [(1.0,)] + [(0.0, 0.1, 0.5, 1.0, 2.0)] * 5
    assert np.prod([len(g) for g in grids]) > MAX_GRID
    rates = _search(people, grids, [True, True, False, True, False, False], 20, "one-se", 5)
    assert len(rates) < MAX_GRID
    best = max(rates, key=lambda c: rates[c])
    assert rates[best] == 1.0 and best[2] > 0
