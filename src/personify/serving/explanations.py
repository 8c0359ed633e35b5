"""Explanations: each recommended item carries machine-readable reasons and one plain sentence in
the request's language ("Because you viewed X", "Popular in Berlin this week")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SENTENCES: dict[str, dict[str, str]] = {
    "because_you_viewed": {
        "en": "Because you viewed {title}",
        "ru": "Потому что вы смотрели «{title}»",
    },
    "because_you_bought": {
        "en": "Because you bought {title}",
        "ru": "Потому что вы купили «{title}»",
    },
    "matches_your_taste": {
        "en": "Matches your taste",
        "ru": "Соответствует вашему вкусу",
    },
    "in_your_session": {
        "en": "Goes with {title}, which you are looking at now",
        "ru": "Подходит к «{title}», который вы смотрите сейчас",
    },
    "matches_interest": {
        "en": "Matches your interest: {interest}",
        "ru": "Соответствует вашему интересу: {interest}",
    },
    "popular_in": {
        "en": "Popular in {place} this week",
        "ru": "Популярно в {place} на этой неделе",
    },
    "trending": {"en": "Trending now", "ru": "Сейчас в тренде"},
    "popular": {"en": "Popular with everyone", "ru": "Популярно у всех"},
    "new_in_category": {
        "en": "New arrival in a category you like: {category}",
        "ru": "Новинка в категории, которая вам нравится: {category}",
    },
    "new_item": {"en": "New arrival", "ru": "Новинка"},
    "people_like_you": {
        "en": "People with similar tastes liked it",
        "ru": "Нравится людям с похожими вкусами",
    },
    "bought_together": {
        "en": "Often bought together with {title}",
        "ru": "Часто покупают вместе с «{title}»",
    },
    "similar_to": {"en": "Similar to {title}", "ru": "Похоже на «{title}»"},
    "buy_again": {"en": "You may need it again", "ru": "Возможно, пора купить снова"},
    "shared_interests": {
        "en": "You share interests: {interests}",
        "ru": "У вас общие интересы: {interests}",
    },
    "pinned": {"en": "Featured", "ru": "Рекомендуем"},
    "promoted": {"en": "Promoted", "ru": "Реклама"},
    "requested_list": {"en": "Ranked for you", "ru": "Упорядочено для вас"},
    "not_personalized": {
        "en": "Popular items (personalization is off for you)",
        "ru": "Популярные товары (персонализация для вас отключена)",
    },
}


@dataclass(slots=True)
class Reason:
    """One machine-readable reason; ``params`` fill the sentence (titles, places, interests).
    Treated as immutable (not frozen: a frozen init costs several times more, per candidate)."""

    type: str
    source: str
    weight: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "source": self.source, **self.params}


def sentence(reason: Reason, language: str = "en") -> str:
    """The reason as one human-readable sentence in ``language`` (English fallback)."""
    templates = SENTENCES.get(reason.type)
    if templates is None:
        return reason.type.replace("_", " ").capitalize()
    template = templates.get(language) or templates["en"]
    params = {k: v for k, v in reason.params.items() if isinstance(v, (str, int, float))}
    try:
        return template.format(**params)
    except KeyError:
        return templates.get(language, templates["en"]).split("{")[0].rstrip(" :«")


def explain(reasons: list[Reason], language: str = "en") -> tuple[list[dict[str, Any]], str]:
    """Machine-readable reasons (strongest first) and the sentence of the strongest one."""
    ordered = sorted(reasons, key=lambda r: -r.weight)
    if not ordered:
        return [], ""
    return [r.to_dict() for r in ordered], sentence(ordered[0], language)
