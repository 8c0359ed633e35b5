""""View as this user": recommendations for a person in a chosen context, without logging an
impression, and how they differ from the person's default context."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, get_args

from personify.domain.events import Context, Location, Weather, WeatherCondition
from personify.serving.chain import RecommendationResult, RecommendationService
from personify.serving.request import RecommendationRequest, Repetition

DEVICES = ("desktop", "mobile", "tablet")
CHANNELS = ("web", "app", "email", "push")
WEATHER = tuple(get_args(WeatherCondition))
"""The weather conditions the switcher offers (those ``context.weather.condition`` accepts)."""
REPETITION = ("off", "strong")
"""Anti-repetition choices besides the default (penalty 0.5 per unclicked impression in 24 h):
``off`` = as if nothing had been shown, ``strong`` = 0.1 per impression, for a week."""


@dataclass(frozen=True)
class ContextChoice:
    """What the context switcher can set; empty means "as the request would come without it"."""

    device: str = ""
    hour: int | None = None
    country: str = ""
    channel: str = ""
    weather: str = ""
    temperature: float | None = None
    repetition: str = ""

    @property
    def is_default(self) -> bool:
        return not (self.device or self.hour is not None or self.country or self.channel
                    or self.weather or self.temperature is not None or self.repetition)

    def context(self, today: datetime | None = None) -> Context:
        local_time = None
        if self.hour is not None:
            base = today or datetime.now(UTC)
            local_time = base.replace(hour=self.hour, minute=0, second=0, microsecond=0,
                                      tzinfo=None)
        weather = None
        if self.weather or self.temperature is not None:
            weather = Weather(condition=self.weather or None,  # type: ignore[arg-type]
                              temperature_c=self.temperature)
        return Context(
            device=self.device or None,
            channel=self.channel or None,
            location=Location(country=self.country) if self.country else None,
            local_time=local_time,
            weather=weather,
        )

    def repetition_rule(self) -> Repetition:
        if self.repetition == "off":
            return Repetition(penalty=1.0)
        if self.repetition == "strong":
            return Repetition(penalty=0.1, hours=24 * 7)
        return Repetition()


def _temperature(text: str | None) -> float | None:
    try:
        value = float((text or "").strip().replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) and -90 <= value <= 60 else None


def parse_choice(device: str | None, hour: str | None, country: str | None,
                 channel: str | None, *, weather: str | None = None,
                 temperature: str | None = None, repetition: str | None = None
                 ) -> ContextChoice:
    """A context choice from query values, ignoring anything outside the offered options."""
    parsed_hour = int(hour) if hour and hour.isdigit() and 0 <= int(hour) <= 23 else None
    return ContextChoice(
        device=device if device in DEVICES else "",
        hour=parsed_hour,
        country=(country or "").strip()[:64],
        channel=channel if channel in CHANNELS else "",
        weather=weather if weather is not None and weather in WEATHER else "",
        temperature=_temperature(temperature),
        repetition=repetition if repetition in REPETITION else "",
    )


@dataclass
class PreviewRow:
    rank: int
    item_id: str
    title: str
    explanation: str
    source: str
    score: float
    default_rank: int | None = None
    """Where the item stood in the default context (None: not in that list)."""


@dataclass
class RecommendationPreview:
    result: RecommendationResult
    rows: list[PreviewRow] = field(default_factory=list)
    compared: bool = False
    dropped: list[str] = field(default_factory=list)


def preview_recommendations(
    service: RecommendationService,
    tenant: str,
    user_id: str,
    choice: ContextChoice,
    *,
    language: Literal["en", "ru"] = "en",
    n: int = 10,
) -> RecommendationPreview:
    """The user's recommendations in ``choice``'s context, compared with the default context
    when a context is chosen. Nothing is logged: previews never count as impressions."""

    def ask(context: Context, repetition: Repetition) -> RecommendationResult:
        request = RecommendationRequest(
            user_id=user_id, n=n, context=context, explain=True, language=language,
            log_impression=False, repetition=repetition,
        )
        return service.recommend(tenant, request)

    result = ask(choice.context(), choice.repetition_rule())
    baseline = None if choice.is_default else ask(Context(), Repetition())
    default_ranks = (
        {item.item_id: rank for rank, item in enumerate(baseline.items, start=1)}
        if baseline is not None
        else {}
    )
    rows = [
        PreviewRow(
            rank=rank,
            item_id=item.item_id,
            title=(item.item.title if item.item is not None and item.item.title else item.item_id),
            explanation=item.explanation,
            source=item.source,
            score=item.score,
            default_rank=default_ranks.get(item.item_id) if baseline is not None else rank,
        )
        for rank, item in enumerate(result.items, start=1)
    ]
    shown = {row.item_id for row in rows}
    dropped = [i for i in default_ranks if i not in shown]
    return RecommendationPreview(result, rows, baseline is not None, dropped)
