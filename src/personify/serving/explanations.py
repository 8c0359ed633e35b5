"""Explanations: each recommended item carries machine-readable reasons and one plain sentence in
the request's language ("Because you viewed X", "Popular in Berlin this week").

The sentences of the reasons a candidate source emits are declared with the source
(``SourceSpec.explanations`` in :mod:`personify.serving.source_registry`); ``SENTENCES`` holds
those of the chain's own reasons (rules, re-ranked lists, similar items, people)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from personify.serving.source_registry import source_registry

SENTENCES: dict[str, Mapping[str, str]] = {
    "similar_to": {"en": "Similar to {title}", "ru": "Похоже на «{title}»"},
    "shared_interests": {
        "en": "You share interests: {interests}",
        "ru": "У вас общие интересы: {interests}",
    },
    "pinned": {"en": "Featured", "ru": "Рекомендуем"},
    "promoted": {"en": "Promoted", "ru": "Реклама"},
    "requested_list": {"en": "Ranked for you", "ru": "Упорядочено для вас"},
    "recently_viewed": {"en": "You viewed this recently", "ru": "Вы недавно смотрели это"},
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
    templates = SENTENCES.get(reason.type) or source_registry().sentences(reason.type)
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
