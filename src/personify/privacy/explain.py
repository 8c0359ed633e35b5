"""``why these items``: the explanation of a logged recommendation, read back from its
impression event (the chain logs sources and plain-language explanations with every answer)."""

from __future__ import annotations

from typing import Any

from personify.domain.errors import NotFound
from personify.storage.ports import EventStore

IMPRESSION_PREFIX = "imp-"
"""The chain logs the impression of recommendation R as event ``imp-R``."""

GENERIC = {
    "en": "Shown because it is popular or new right now.",
    "ru": "Показано, потому что это сейчас популярно или ново.",
}


def explain_recommendation(
    events: EventStore, tenant: str, recommendation_id: str, *, language: str = "en"
) -> dict[str, Any]:
    """Items of the recommendation in order, each with its source and explanation."""
    event = events.get(tenant, f"{IMPRESSION_PREFIX}{recommendation_id}")
    if event is None or event.type != "impression":
        raise NotFound(
            f"no logged recommendation {recommendation_id!r}",
            field="recommendation_id",
            accepted="the recommendation_id of a response whose impression was logged",
        )
    props = event.properties
    sources = _strings(props.get("sources"))
    texts = _strings(props.get("explanations"))
    fallback = GENERIC.get(language, GENERIC["en"])
    items = [
        {
            "position": position + 1,
            "item_id": item_id,
            "source": sources[position] if position < len(sources) else "unknown",
            "explanation": (texts[position] if position < len(texts) else "") or fallback,
        }
        for position, item_id in enumerate(event.item_ids or [])
    ]
    personalized = bool(props.get("personalized", False))
    return {
        "recommendation_id": recommendation_id,
        "shown_at": event.timestamp.isoformat(),
        "personalized": personalized,
        "model_version": props.get("model_version") or None,
        "summary": _summary(personalized, language),
        "items": items,
    }


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _summary(personalized: bool, language: str) -> str:
    if language == "ru":
        return (
            "Подобрано по вашим недавним действиям и похожим товарам."
            if personalized
            else "Без персонализации: популярное и новое."
        )
    return (
        "Chosen from your recent activity and items similar to it."
        if personalized
        else "Not personalized: popular and new items."
    )
