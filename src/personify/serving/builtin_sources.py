"""The built-in serving sources as :class:`~personify.serving.source_registry.SourceSpec`: for
each, its request-time source, what it needs from the bundle, its default weight and place in
the chain, the sentences of its reasons, and how the blend scores it offline (as the online
source does, relative to its best) to learn its weight."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from personify.data.popularity import decayed_popularity
from personify.serving.basket_sources import (
    BoughtTogetherSource,
    BuyAgainSource,
    offline_bought_together,
    train_bought_together,
    train_buy_again,
)
from personify.serving.bundle import ModelBundle
from personify.serving.content_similarity import ColdContentSource
from personify.serving.context_sources import (
    TimeOfDaySource,
    offline_time_of_day,
    train_time_of_day,
)
from personify.serving.factor_source import FactorSource
from personify.serving.session_knn import SessionKnnSource, train_session_knn
from personify.serving.source_registry import (
    BlendContext,
    BlendLearning,
    OfflineScorer,
    SourceSpec,
    UserScores,
)
from personify.serving.sources import (
    CollaborativeSource,
    InterestsSource,
    NewItemsSource,
    PopularSource,
    SessionSource,
    TrendingSource,
    interest_score,
)
from personify.storage.online.port import OnlineStateConfig

POPULAR_GRID: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
FACTOR_GRID: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0)
INTEREST_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4, 0.8)
TRENDING_GRID: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.3)
BOUGHT_TOGETHER_GRID: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0)
TIME_OF_DAY_GRID: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.4)
TRENDING_HALF_LIFE_DAYS = OnlineStateConfig().half_life.total_seconds() / 86_400.0
"""The live counters' default half-life: ``trending`` is scored as they stood at the cut-off."""
SOURCE_LENGTH = 100
"""Candidates per source, as the chain asks for them."""


def _relative(vector: NDArray[np.float32]) -> NDArray[np.float32]:
    return (vector / (vector.max(initial=0.0) or 1.0)).astype(np.float32)


def _collaborative(ctx: BlendContext) -> OfflineScorer:
    """As the ``collaborative`` source scores: the person's list when the bundle has one, else
    the history folded through the neighbours; relative to the best."""
    bundle, users = ctx.bundle, ctx.data.users

    def score(user: int, history: NDArray[np.int32], weights: NDArray[np.float64]) -> UserScores:
        lists = bundle.user_lists
        listed = lists.row(users.ids[user]) if lists is not None else None
        if listed is not None:
            items, scores = listed[0][:SOURCE_LENGTH], listed[1][:SOURCE_LENGTH]
            return dict(zip(items.tolist(), (scores / (scores.max() or 1.0)).tolist(),
                            strict=True))
        ids, found, _ = bundle.history_scores(
            bundle.items.lookup(history), list(weights), SOURCE_LENGTH
        )
        if not ids:
            return {}
        return dict(zip(bundle.items.indices(ids).tolist(),
                        (found / (found.max() or 1.0)).tolist(), strict=True))

    return score


def _factors(ctx: BlendContext) -> OfflineScorer | None:
    """As the ``factors`` source scores: the top of the folded-in vector, relative to the best."""
    factors = ctx.bundle.factors
    if factors is None:
        return None

    def score(user: int, history: NDArray[np.int32], weights: NDArray[np.float64]) -> UserScores:
        if history.size == 0:
            return {}
        idx = history.astype(np.int64)
        top, scores = factors.top(factors.fold_in(idx, weights), SOURCE_LENGTH, exclude=idx)
        if top.size == 0:
            return {}
        best = float(np.max(scores)) or 1.0
        return dict(zip(top.tolist(), (np.clip(scores, 0, None) / best).tolist(), strict=True))

    return score


def _interests(ctx: BlendContext) -> OfflineScorer | None:
    """The most popular items of the person's three most frequent categories (needs labels)."""
    if not ctx.labels:
        return None
    return _LabelIndex(ctx.bundle, ctx.labels).scores


def _popular(ctx: BlendContext) -> OfflineScorer:
    pop = _relative(ctx.bundle.popularity)
    return lambda user, history, weights: pop


def _trending(ctx: BlendContext) -> OfflineScorer:
    """Popularity decayed at the live counters' half-life (global: the validation log has no
    request context)."""
    live = _relative(decayed_popularity(ctx.data, TRENDING_HALF_LIFE_DAYS))
    return lambda user, history, weights: live


class _LabelIndex:
    """Items per category, most popular first, for the ``interests`` source's scores."""

    def __init__(self, bundle: ModelBundle, labels: Mapping[str, Sequence[str]]) -> None:
        self.popularity = bundle.popularity
        self.item_labels: list[tuple[str, ...]] = [
            tuple(dict.fromkeys(c.lower() for c in labels.get(item_id, ())))
            for item_id in bundle.items.ids
        ]
        members: dict[str, list[int]] = {}
        for i, cats in enumerate(self.item_labels):
            for c in cats:
                members.setdefault(c, []).append(i)
        self.top: dict[str, list[tuple[int, float]]] = {}
        for label, items in members.items():
            arr = np.asarray(items, dtype=np.int64)
            order = arr[np.argsort(-self.popularity[arr], kind="stable")][:SOURCE_LENGTH]
            best = float(self.popularity[order[0]]) or 1.0
            self.top[label] = [(int(i), float(self.popularity[i]) / best) for i in order]

    def scores(self, user: int, history: NDArray[np.int32],
               weights: NDArray[np.float64]) -> UserScores:
        counts: dict[str, int] = {}
        for i in history.tolist():
            for c in self.item_labels[i]:
                counts[c] = counts.get(c, 0) + 1
        chosen = sorted(counts, key=lambda c: -counts[c])[:3]
        out: dict[int, float] = {}
        for rank, label in enumerate(chosen):
            for item, p in self.top.get(label, ()):
                score = interest_score(rank, p)
                if score > out.get(item, 0.0):
                    out[item] = score
        return out


_BECAUSE = {
    "because_you_viewed": {
        "en": "Because you viewed {title}",
        "ru": "Потому что вы смотрели «{title}»",
    },
    "because_you_bought": {
        "en": "Because you bought {title}",
        "ru": "Потому что вы купили «{title}»",
    },
}

BUILTIN_SPECS: tuple[SourceSpec, ...] = (
    SourceSpec(
        name="session", source=SessionSource(), personal=True, default_weight=1.2, position=10,
        explanations={"in_your_session": {
            "en": "Goes with {title}, which you are looking at now",
            "ru": "Подходит к «{title}», который вы смотрите сейчас",
        }},
    ),
    SourceSpec(
        name="session_knn", source=SessionKnnSource(), personal=True, default_weight=1.0,
        position=12, needs=("session_knn",), train=train_session_knn, feature=False,
        in_default_order=False,  # the session endpoint asks it; other requests name it
        explanations={"similar_visits": {
            "en": "Visitors who looked at {title} in a visit like yours looked at it",
            "ru": "Посетители, смотревшие «{title}» в похожем визите, смотрели и это",
        }},
    ),
    SourceSpec(
        name="collaborative", source=CollaborativeSource(), personal=True, default_weight=1.0,
        position=20, needs=("neighbours",),
        explanations={**_BECAUSE, "people_like_you": {
            "en": "People with similar tastes liked it",
            "ru": "Нравится людям с похожими вкусами",
        }},
        blend=BlendLearning((1.0,), _collaborative),
    ),
    SourceSpec(
        name="factors", source=FactorSource(), personal=True, default_weight=0.25, position=30,
        needs=("factors",),
        explanations={**_BECAUSE, "matches_your_taste": {
            "en": "Matches your taste", "ru": "Соответствует вашему вкусу",
        }},
        blend=BlendLearning(FACTOR_GRID, _factors),
    ),
    SourceSpec(
        name="bought_together", source=BoughtTogetherSource(), personal=True,
        default_weight=0.3, position=35, needs=("bought_together",),
        train=train_bought_together,
        explanations={"bought_together": {
            "en": "Often bought together with {title}",
            "ru": "Часто покупают вместе с «{title}»",
        }},
        blend=BlendLearning(BOUGHT_TOGETHER_GRID, offline_bought_together),
    ),
    SourceSpec(
        # the held-out protocol of the blend asks for items new to the person: a repeat
        # source cannot be learned there, so it is asked when a request names it
        name="buy_again", source=BuyAgainSource(), personal=True, default_weight=0.5,
        position=50, needs=("buy_again",), train=train_buy_again, repeats=True,
        in_default_order=False,
        explanations={"buy_again": {"en": "You may need it again",
                                    "ru": "Возможно, пора купить снова"}},
    ),
    SourceSpec(
        name="interests", source=InterestsSource(), personal=True, default_weight=0.4,
        position=40,
        explanations={"matches_interest": {
            "en": "Matches your interest: {interest}",
            "ru": "Соответствует вашему интересу: {interest}",
        }},
        blend=BlendLearning(INTEREST_GRID, _interests),
    ),
    SourceSpec(
        name="trending", source=TrendingSource(), personal=False, default_weight=0.3, position=60,
        explanations={
            "popular_in": {"en": "Popular in {place} this week",
                           "ru": "Популярно в {place} на этой неделе"},
            "trending": {"en": "Trending now", "ru": "Сейчас в тренде"},
        },
        blend=BlendLearning(TRENDING_GRID, _trending),
    ),
    SourceSpec(
        # cold start: untrained items like the person's newest ones by content (not a ranking
        # feature: a ranker trained before it existed keeps its feature vector)
        name="cold_content", source=ColdContentSource(), personal=True, default_weight=0.3,
        position=62, feature=False,
        explanations={"similar_to": {"en": "Similar to {title}", "ru": "Похоже на «{title}»"}},
    ),
    SourceSpec(
        name="time_of_day", source=TimeOfDaySource(), personal=False, default_weight=0.1,
        position=65, needs=("time_of_day",), train=train_time_of_day,
        explanations={"popular_now": {"en": "Popular at this time of day",
                                      "ru": "Популярно в это время суток"}},
        blend=BlendLearning(TIME_OF_DAY_GRID, offline_time_of_day),
    ),
    SourceSpec(
        name="new_items", source=NewItemsSource(), personal=False, default_weight=0.1,
        position=70,
        explanations={
            "new_in_category": {
                "en": "New arrival in a category you like: {category}",
                "ru": "Новинка в категории, которая вам нравится: {category}",
            },
            "new_item": {"en": "New arrival", "ru": "Новинка"},
        },
    ),
    SourceSpec(
        name="popular", source=PopularSource(), personal=False, default_weight=0.2, position=80,
        explanations={
            "popular": {"en": "Popular with everyone", "ru": "Популярно у всех"},
            "not_personalized": {
                "en": "Popular items (personalization is off for you)",
                "ru": "Популярные товары (персонализация для вас отключена)",
            },
        },
        blend=BlendLearning(POPULAR_GRID, _popular),
    ),
)
