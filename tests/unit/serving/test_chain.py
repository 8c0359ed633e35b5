"""The serving chain end to end in process: real online state, a trained bundle, the catalogue."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest

from personify.domain.events import Context, Event, Location
from personify.domain.items import Item
from personify.domain.users import Profile, User
from personify.jobs.training import TrainingConfig, train_bundle
from personify.serving.catalog import CatalogSnapshot
from personify.serving.chain import RecommendationService
from personify.serving.request import (
    Boost,
    Diversity,
    Filters,
    PropertyCondition,
    RecommendationRequest,
    Rules,
)
from personify.storage.online.memory import MemoryOnlineState

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
T = "default"


def _items() -> list[Item]:
    items = []
    for i in range(40):
        cat = ["shoes", "books", "toys", "food"][i % 4]
        items.append(
            Item(
                item_id=f"i{i}",
                title=f"Item {i}",
                categories=[cat],
                price=float(i),
                created_at=NOW - timedelta(days=100 - i),
            )
        )
    items.append(Item(item_id="alice", type="person", title="Alice", categories=["people"]))
    items.append(
        Item(
            item_id="post-a",
            type="content",
            title="Alice's post",
            author_id="alice",
            categories=["shoes"],
        )
    )
    return items


def _history() -> list[Event]:
    """Two taste groups: even users like shoes+books items 0..19, odd users toys+food 20..39."""
    events = []
    n = 0
    for u in range(30):
        base = 0 if u % 2 == 0 else 20
        for j in range(8):
            item = base + (u * 3 + j * 5) % 20
            n += 1
            events.append(
                Event(
                    event_id=f"h{n}",
                    type="view",
                    user_id=f"u{u}",
                    item_id=f"i{item}",
                    timestamp=NOW - timedelta(days=5, minutes=n),
                )
            )
    return events


@pytest.fixture
def service() -> tuple[RecommendationService, MemoryOnlineState, list[Event]]:
    history = _history()
    bundle, _ = train_bundle(history, TrainingConfig(model="itemknn", params={"k": 20}))
    state = MemoryOnlineState()
    state.apply(T, history, now=NOW - timedelta(days=5))
    catalog = CatalogSnapshot(_items())
    logged: list[Event] = []
    users = {"fan": User(user_id="fan", profile=Profile(interests=["Toys"]))}
    svc = RecommendationService(
        bundles=lambda t: bundle,
        catalogs=lambda t: catalog,
        state=state,
        users=lambda t, u: users.get(u),
        personalization_allowed=lambda t, u: u != "optout",
        log_impression=lambda t, e: logged.append(e),
        clock=lambda: NOW,
    )
    return svc, state, logged


def _click(state: MemoryOnlineState, user: str, item: str, minutes: int = 1) -> None:
    state.apply(
        T,
        [
            Event(
                event_id=f"c-{user}-{item}-{minutes}",
                type="click",
                user_id=user,
                item_id=item,
                timestamp=NOW - timedelta(minutes=minutes),
            )
        ],
        now=NOW,
    )


def test_a_click_changes_the_very_next_answer(service) -> None:
    svc, state, _ = service
    before = svc.recommend(T, RecommendationRequest(user_id="new", n=5, explain=True))
    _click(state, "new", "i21")
    after = svc.recommend(T, RecommendationRequest(user_id="new", n=5, explain=True))
    ids = [i.item_id for i in after.items]
    assert "i21" not in ids, "the clicked item is excluded at once"
    assert ids != [i.item_id for i in before.items]
    groups = [int(i[1:]) >= 20 for i in ids if i.startswith("i")]
    assert sum(groups) >= 4, f"neighbours of the clicked item's group should dominate: {ids}"
    assert after.items[0].reasons and after.items[0].explanation


def test_new_user_gets_popular_fallback_with_explanations(service) -> None:
    svc, _, logged = service
    result = svc.recommend(
        T, RecommendationRequest(user_id="nobody", n=10, explain=True, language="ru")
    )
    assert len(result.items) == 10
    assert all(item.explanation for item in result.items)
    assert result.personalized
    assert logged and logged[-1].recommendation_id == result.recommendation_id
    assert logged[-1].item_ids == [i.item_id for i in result.items]


def test_opted_out_user_is_not_personalized(service) -> None:
    svc, state, _ = service
    _click(state, "optout", "i21")
    result = svc.recommend(T, RecommendationRequest(user_id="optout", n=5, explain=True))
    assert not result.personalized
    assert any("not personalized" in w for w in result.warnings)
    assert {r["type"] for i in result.items for r in i.reasons} <= {
        "not_personalized",
        "trending",
        "new_item",
        "popular_in",
    }


def test_declared_interest_is_used_and_explained(service) -> None:
    svc, _, _ = service
    result = svc.recommend(
        T, RecommendationRequest(user_id="fan", n=5, explain=True, sources=["interests"])
    )
    assert result.items
    assert all(i.item is not None and "toys" in i.item.categories for i in result.items)
    assert "toys" in result.items[0].explanation.lower()


def test_filters_types_price_and_too_few_items(service) -> None:
    svc, _, _ = service
    req = RecommendationRequest(
        user_id="u1",
        n=10,
        item_types=["product"],
        filters=Filters(categories=["books"], price_max=10),
    )
    result = svc.recommend(T, req)
    assert all("books" in i.item.categories and i.item.price <= 10 for i in result.items if i.item)
    assert len(result.items) < 10
    assert any("only" in w for w in result.warnings)


def test_never_the_user_themself_or_their_own_items(service) -> None:
    svc, state, _ = service
    _click(state, "alice", "i2")
    result = svc.recommend(T, RecommendationRequest(user_id="alice", n=42, item_types=[]))
    ids = {i.item_id for i in result.items}
    assert "alice" not in ids and "post-a" not in ids


def test_pinned_promoted_boosts_and_diversity(service) -> None:
    svc, _, _ = service
    req = RecommendationRequest(
        user_id="u2",
        n=8,
        rules=Rules(
            pinned=["i39"],
            promoted=["i38", "i37"],
            promoted_share=0.25,
            boosts=[Boost(condition=PropertyCondition(field="price", op="lt", value=3), factor=50)],
        ),
        diversity=Diversity(max_per_category=2),
    )
    result = svc.recommend(T, req)
    ids = [i.item_id for i in result.items]
    assert ids[0] == "i39"
    assert {"i38", "i37"} <= set(ids)
    organic = [i for i in result.items if i.item_id not in {"i39", "i38", "i37"}]
    counts: dict[str, int] = {}
    for i in organic:
        for c in i.item.categories:
            counts[c] = counts.get(c, 0) + 1
    assert max(counts.values()) <= 2


def test_rerank_a_client_list(service) -> None:
    svc, state, _ = service
    _click(state, "r", "i3")
    wanted = ["i30", "i5", "i7", "i33"]
    result = svc.recommend(
        T, RecommendationRequest(user_id="r", n=4, filters=Filters(item_ids=wanted))
    )
    assert sorted(i.item_id for i in result.items) == sorted(wanted)
    assert result.items[0].item_id in {"i5", "i7"}


def test_trending_in_the_request_country(service) -> None:
    svc, state, _ = service
    ctx = Context(location=Location(country="de", city="Berlin"))
    state.apply(
        T,
        [
            Event(
                event_id=f"de{k}",
                type="purchase",
                user_id=f"g{k}",
                item_id="i11",
                timestamp=NOW - timedelta(minutes=k),
                context=ctx,
            )
            for k in range(5)
        ],
        now=NOW,
    )
    result = svc.recommend(
        T,
        RecommendationRequest(
            anonymous_id="visitor", n=3, explain=True, context=ctx, sources=["trending"]
        ),
    )
    assert result.items[0].item_id == "i11"
    assert result.items[0].explanation == "Popular in Berlin this week"


def test_muted_items_hold_without_personalization_and_in_similar(service) -> None:
    svc, _, _ = service
    baseline = {i.item_id for i in svc.similar(T, "i0", 5).items}
    assert baseline
    popular = {
        i.item_id for i in svc.recommend(T, RecommendationRequest(user_id="optout", n=5)).items
    }
    muted = baseline | popular
    svc.muted = lambda tenant, user_id: muted if user_id == "optout" else set()
    result = svc.recommend(T, RecommendationRequest(user_id="optout", n=10))
    assert not result.personalized and result.items
    assert not muted & {i.item_id for i in result.items}
    assert not muted & {i.item_id for i in svc.similar(T, "i0", 10, user_id="optout").items}


def test_stored_history_stands_in_when_the_live_state_forgot_the_user(service) -> None:
    svc, _, _ = service
    stored = [
        Event(event_id=f"old{k}", type="purchase", user_id="returning", item_id=f"i{20 + k}",
              timestamp=NOW - timedelta(days=400 + k))
        for k in range(3)
    ]
    without = svc.recommend(T, RecommendationRequest(user_id="returning", n=5))
    assert "collaborative" not in without.sources
    svc.history = lambda tenant, subject: stored if subject == "returning" else []
    result = svc.recommend(T, RecommendationRequest(user_id="returning", n=5, explain=True))
    assert "collaborative" in result.sources
    ids = [i.item_id for i in result.items]
    assert not {"i20", "i21", "i22"} & set(ids), "bought items stay excluded"
    assert sum(int(i[1:]) >= 20 for i in ids) >= 4, ids


class _Spy:
    """A personal source that records whether the chain asked it."""

    name = "spy"
    personal = True

    def __init__(self) -> None:
        self.asked = 0

    def candidates(self, scope, n):  # type: ignore[no-untyped-def]
        self.asked += 1
        return []


def test_a_source_the_learned_blend_weighs_zero_is_not_asked(service) -> None:
    svc, _, _ = service
    bundle = svc.bundles(T)
    assert bundle is not None
    spy = _Spy()
    svc.sources = {**svc.sources, "spy": spy}
    svc.source_order = ["spy", *svc.source_order]
    bundle.source_weights["spy"] = 0.0
    svc.recommend(T, RecommendationRequest(user_id="u0", n=5))
    assert spy.asked == 0
    bundle.source_weights["spy"] = 0.3
    svc.recommend(T, RecommendationRequest(user_id="u0", n=5))
    assert spy.asked == 1
    bundle.source_weights["spy"] = 0.0
    bundle.ranker = object()  # a ranker reads every source's score: all are asked
    # the stand-in ranker cannot score; the source was asked before ranking
    with contextlib.suppress(AttributeError):
        svc.recommend(T, RecommendationRequest(user_id="u0", n=5))
    assert spy.asked == 2


def test_an_explicitly_requested_source_is_asked_even_when_the_blend_weighs_it_zero(
    service,
) -> None:
    svc, _, _ = service
    bundle = svc.bundles(T)
    assert bundle is not None
    bundle.source_weights["interests"] = 0.0
    result = svc.recommend(T, RecommendationRequest(user_id="fan", n=5, explain=True,
                                                    sources=["interests", "popular"]))
    assert "interests" in result.sources
    toys = [i for i in result.items if i.item and "toys" in i.item.categories]
    assert len(toys) == 5, [i.item_id for i in result.items]
    assert result.items[0].reasons[0]["type"] == "matches_interest"


def test_declared_interests_reach_a_cold_users_first_answer(service) -> None:
    svc, _, _ = service
    bundle = svc.bundles(T)
    assert bundle is not None
    bundle.source_weights["interests"] = 0.0  # learned on people with a history
    first = svc.recommend(T, RecommendationRequest(user_id="fan", n=5, explain=True))
    assert "interests" in first.sources
    assert first.items[0].item is not None and "toys" in first.items[0].item.categories
    assert first.items[0].explanation == "Matches your interest: toys"


def test_items_shown_without_a_click_sink_in_the_next_answers(service) -> None:
    svc, _, _ = service
    ask = RecommendationRequest(user_id="u0", n=5)
    first = [i.item_id for i in svc.recommend(T, ask).items]
    second = [i.item_id for i in svc.recommend(T, ask).items]
    third = [i.item_id for i in svc.recommend(T, ask).items]
    assert len(set(first) & set(second)) <= 2, (first, second)
    assert first != third and len(set(first) | set(second) | set(third)) >= 10
    # switched off, the answer repeats (what it did for everyone before)
    off = RecommendationRequest(user_id="u1", n=5, repetition={"penalty": 1.0})
    again = [[i.item_id for i in svc.recommend(T, off).items] for _ in range(3)]
    assert again[0] == again[1] == again[2]
    # only within the window
    svc.clock = lambda: NOW + timedelta(hours=25)
    later = [i.item_id for i in svc.recommend(T, RecommendationRequest(user_id="u0", n=5)).items]
    assert later == first
    assert svc.shown.forget(T, ["u0"]) == 1 and svc.shown.forget(T, ["u0"]) == 0


def test_a_click_clears_an_items_repetition_count(service) -> None:
    svc, state, _ = service
    ask = RecommendationRequest(user_id="u2", n=5, exclude={"seen_days": None})
    first = [i.item_id for i in svc.recommend(T, ask).items]
    _click(state, "u2", first[0], minutes=-1)  # after the answer
    svc.clock = lambda: NOW + timedelta(minutes=2)
    counts = svc.shown.unclicked(T, "u2", NOW - timedelta(hours=1),
                                 state.user_state(T, "u2", now=NOW).recent)
    assert first[0] not in counts and all(counts[i] == 1 for i in first[1:])


def test_weather_in_the_request_context_drives_rules_and_ranker_features(service) -> None:
    from personify.domain.events import Weather
    from personify.serving.features import context_vector, feature_names

    svc, _, _ = service
    rainy = Context(weather=Weather(condition="rain", temperature_c=8.5, precipitation_mm=3.0))
    umbrellas = {"condition": {"field": "categories", "op": "contains", "value": "toys"},
                 "factor": 50.0, "when": [{"field": "weather.condition", "value": "rain"}]}
    wet = svc.recommend(T, RecommendationRequest(user_id="u0", n=5, context=rainy,
                                                 rules={"boosts": [umbrellas]}))
    dry = svc.recommend(T, RecommendationRequest(
        user_id="u0", n=5, context=Context(weather=Weather(condition="clear")),
        rules={"boosts": [umbrellas]}, repetition={"penalty": 1.0}))
    assert all(i.item is not None and "toys" in i.item.categories for i in wet.items)
    assert not all(i.item is not None and "toys" in i.item.categories for i in dry.items)
    names = feature_names()
    row = context_vector(NOW, rainy, None, None)
    start = names.index("hour")
    assert row[names.index("temperature_c") - start] == 8.5
    assert row[names.index("precipitation_mm") - start] == 3.0
    assert row[names.index("weather") - start] > 0


def test_a_new_item_has_similar_items_the_moment_it_is_added(service) -> None:
    svc, state, _ = service
    catalog = svc.catalogs(T)
    assert svc.similar(T, "n1", 5).items == []  # unknown to the catalogue
    catalog.upsert([Item(item_id="i22", title="Wooden train set", categories=["toys"],
                         created_at=NOW - timedelta(days=80))])
    catalog.upsert([Item(item_id="n1", title="Wooden train, deluxe", categories=["toys"],
                         created_at=NOW - timedelta(minutes=5))])
    similar = svc.similar(T, "n1", 5, explain=True)
    ids = [i.item_id for i in similar.items]
    assert ids[0] == "i22", ids  # same category, shared words
    assert all(i.item is not None and "toys" in i.item.categories for i in similar.items)
    assert similar.sources == ["content"] and similar.items[0].explanation.startswith("Similar to")
    # the new-arrivals source offers it to someone into toys as new in their category
    _click(state, "toyfan", "i22")
    result = svc.recommend(T, RecommendationRequest(user_id="toyfan", n=3, explain=True,
                                                    sources=["new_items"]))
    new = [i for i in result.items if i.item_id == "n1"]
    assert new and new[0].reasons[0]["type"] == "new_in_category", [i.item_id for i in result.items]


def test_a_new_item_reaches_people_through_the_default_chain_by_its_content(service) -> None:
    """Cold start served: an item added after training (the model does not know it) is
    recommended to someone whose newest items are like it, with the reason, without being
    asked for by name; once known to the model it is no longer this source's."""
    svc, state, _ = service
    catalog = svc.catalogs(T)
    catalog.upsert([Item(item_id="i22", title="Wooden train set", categories=["toys"],
                         created_at=NOW - timedelta(days=80))])
    _click(state, "trainfan", "i22")
    before = svc.recommend(T, RecommendationRequest(user_id="trainfan", n=10, explain=True))
    assert "n1" not in [i.item_id for i in before.items]
    catalog.upsert([Item(item_id="n1", title="Wooden train, deluxe", categories=["toys"],
                         created_at=NOW - timedelta(minutes=5))])
    after = svc.recommend(T, RecommendationRequest(user_id="trainfan", n=10, explain=True))
    new = [i for i in after.items if i.item_id == "n1"]
    assert new, [i.item_id for i in after.items]
    assert "cold_content" in after.sources
    assert any(r["type"] == "similar_to" and r["source"] == "cold_content"
               for r in new[0].reasons), new[0].reasons
    # known to the model: the cold source leaves it to the trained ones
    only = svc.recommend(T, RecommendationRequest(user_id="trainfan", n=10,
                                                  sources=["cold_content"]))
    bundle = svc.bundles(T)
    assert bundle is not None
    assert all(i.item_id not in bundle.items for i in only.items)


def test_the_cold_source_scores_only_the_items_the_model_does_not_know(service) -> None:
    """Its label members are the cold ones only (found once per catalogue version and model),
    so a trained shop's labels cost nothing; a new item joins them at once."""
    from personify.serving.content_similarity import ColdContentSource

    svc, _, _ = service
    catalog = svc.catalogs(T)
    bundle = svc.bundles(T)
    assert bundle is not None
    source = ColdContentSource()
    catalog.upsert([Item(item_id="i22", title="Wooden train set", categories=["toys"],
                         created_at=NOW - timedelta(days=80))])
    cold = source._cold_labels(catalog, bundle.items)
    members = catalog.with_label("toys")
    assert members and cold("toys") == [i for i in members if i not in bundle.items]
    assert source._cold_labels(catalog, bundle.items) is cold  # same version: kept
    catalog.upsert([Item(item_id="n1", title="Wooden train, deluxe", categories=["toys"],
                         created_at=NOW - timedelta(minutes=5))])
    fresh = source._cold_labels(catalog, bundle.items)
    assert fresh is not cold and "n1" in fresh("toys")
    assert source._cold_labels(catalog, None)("toys") == catalog.with_label("toys")
