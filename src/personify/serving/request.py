"""What a caller may ask of the recommendation chain: who, how many, which item types, in which
context, with which filters, rules and diversity, and whether to explain."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from personify.domain._fields import Identifier, Label, Name, PropertyValue
from personify.domain.events import Context

MAX_RESULTS = 200


class PropertyCondition(BaseModel):
    """``property op value`` on an item's ``properties`` (or a top-level field such as price)."""

    model_config = ConfigDict(extra="forbid")

    field: Name
    op: Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "contains"] = "eq"
    value: PropertyValue


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    categories: list[Label] = Field(default_factory=list, max_length=100)
    exclude_categories: list[Label] = Field(default_factory=list, max_length=100)
    tags: list[Label] = Field(default_factory=list, max_length=100)
    price_min: float | None = Field(default=None, ge=0)
    price_max: float | None = Field(default=None, ge=0)
    available_only: bool = True
    conditions: list[PropertyCondition] = Field(default_factory=list, max_length=20)
    item_ids: list[Identifier] | None = Field(
        default=None, max_length=1000, description="restrict to these items (re-ranking a list)"
    )

    @model_validator(mode="after")
    def _price_range(self) -> Filters:
        if (
            self.price_min is not None
            and self.price_max is not None
            and self.price_min > self.price_max
        ):
            raise ValueError("price_min must not exceed price_max")
        return self


class Exclusions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seen_days: float | None = Field(
        default=1.0,
        ge=0,
        description="exclude items the user interacted with in the last N days; null = never",
    )
    bought: bool = True
    disliked: bool = True
    items: list[Identifier] = Field(default_factory=list, max_length=1000)


class ContextCondition(BaseModel):
    """``field op value`` on the request's context (e.g. ``weather.condition eq rain``)."""

    model_config = ConfigDict(extra="forbid")

    field: Literal[
        "weather.condition", "weather.temperature_c", "weather.precipitation_mm",
        "weather.wind_kmh", "device", "channel", "location.country", "location.city",
    ]
    op: Literal["eq", "ne", "lt", "lte", "gt", "gte", "in"] = "eq"
    value: PropertyValue


class Boost(BaseModel):
    """Multiply the score of items matching a condition (factor < 1 buries), only when every
    ``when`` condition holds for the request's context (e.g. umbrellas up when it rains)."""

    model_config = ConfigDict(extra="forbid")

    condition: PropertyCondition
    factor: float = Field(gt=0, le=100)
    when: list[ContextCondition] = Field(default_factory=list, max_length=10)


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    boosts: list[Boost] = Field(default_factory=list, max_length=20)
    pinned: list[Identifier] = Field(
        default_factory=list, max_length=50, description="placed first, in this order"
    )
    promoted: list[Identifier] = Field(default_factory=list, max_length=500)
    promoted_share: float = Field(
        default=0.0, ge=0, le=1, description="share of slots given to promoted items"
    )


class SegmentRule(BaseModel):
    """Filters and boosts that apply only to people in any of ``segments`` (the live segments of
    ``/v1/segments``): e.g. no alcohol for the segment ``minors``, premium items up for ``vip``.
    Anonymous visitors are in no segment."""

    model_config = ConfigDict(extra="forbid")

    segments: list[Name] = Field(min_length=1, max_length=20)
    exclude_categories: list[Label] = Field(default_factory=list, max_length=100)
    conditions: list[PropertyCondition] = Field(
        default_factory=list, max_length=20, description="items must satisfy every one")
    boosts: list[Boost] = Field(default_factory=list, max_length=20)
    negate: bool = Field(default=False, description="apply to people in none of the segments")


class Diversity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_per_category: int | None = Field(default=None, ge=1)
    mmr_lambda: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="1 = pure relevance; lower trades relevance for variety",
    )


class Repetition(BaseModel):
    """Anti-repetition: each time an item was shown to the person within ``hours`` without
    any interaction with it since, its score is multiplied by ``penalty`` (1 = off)."""

    model_config = ConfigDict(extra="forbid")

    penalty: float = Field(
        default=0.5, gt=0, le=1, description="score factor per unclicked impression; 1 = off"
    )
    hours: float = Field(
        default=24.0, ge=0, le=24 * 7, description="how long an unclicked impression counts"
    )


class RecommendationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Identifier | None = None
    anonymous_id: Identifier | None = None
    n: int = Field(default=10, ge=1, le=MAX_RESULTS)
    item_types: list[Name] = Field(default_factory=list, max_length=20)
    context: Context = Field(default_factory=Context)
    filters: Filters = Field(default_factory=Filters)
    exclude: Exclusions = Field(default_factory=Exclusions)
    rules: Rules = Field(default_factory=Rules)
    segment_rules: list[SegmentRule] = Field(
        default_factory=list, max_length=20,
        description="filters and boosts for people in given live segments")
    diversity: Diversity = Field(default_factory=Diversity)
    repetition: Repetition = Field(default_factory=Repetition)
    cold_slots: int | None = Field(
        default=None, ge=0, le=MAX_RESULTS,
        description="of the n places, how many are kept for cold items (ones the trained "
        "model does not know yet: added since the last training, never interacted with) "
        "that match the person by content; those already ranked in count, the rest replace "
        "the lowest-ranked others, spread through the list. 0 = none; null = the tenant's "
        "default (setting cold_slots)")
    explain: bool = False
    language: Literal["en", "ru"] = "en"
    sources: list[Name] | None = Field(
        default=None, description="override the configured source order for this request"
    )
    log_impression: bool = True

    @property
    def subject(self) -> str | None:
        if self.user_id is not None:
            return self.user_id
        if self.anonymous_id is not None:
            return f"anon:{self.anonymous_id}"
        return None
