"""``/v1/recommendations``: personalized recommendations (POST with every option, GET for the
simple cases), re-ranking of a client list, and similar items. Needs the ``serve`` scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from personify.api.deps import (
    AnonymousServeKey,
    EngineDep,
    ExperimentsDep,
    ServeAccess,
    ServeKey,
)
from personify.api.responses import JSONBody
from personify.api.routing import KeyFirstRoute
from personify.domain import limits
from personify.domain._fields import Identifier, Label, Name, ShortText
from personify.domain.errors import InvalidInput
from personify.domain.events import Context, Location, Weather, WeatherCondition
from personify.domain.items import Item
from personify.runtime.engine import Engine
from personify.runtime.experiment_serving import affects_serving, recommend_in_experiments
from personify.runtime.experiments import ExperimentsRuntime
from personify.serving.catalog import CatalogSnapshot
from personify.serving.chain import RecommendationResult, RecommendedItem
from personify.serving.request import (
    MAX_RESULTS,
    Exclusions,
    Filters,
    RecommendationRequest,
    Repetition,
)
from personify.storage.online.port import Interaction

router = APIRouter(prefix="/v1", tags=["recommendations"], route_class=KeyFirstRoute)


class RecommendedItemOut(BaseModel):
    item_id: str
    score: float
    source: str = Field(description="the candidate source that contributed most")
    explanation: str = Field("", description="why, in the request's language (explain=true)")
    reasons: list[dict[str, Any]] = Field(default_factory=list)
    item: Item | None = None


class RecommendationsOut(BaseModel):
    recommendation_id: str = Field(
        description="quote it on later events (recommendation_id) to attribute clicks and buys"
    )
    personalized: bool
    model_version: str | None = Field(
        description="the model bundle version that served this (a model-vs-model experiment's "
        "pinned version for units in its variants)"
    )
    sources: list[str]
    warnings: list[str] = Field(default_factory=list)
    items: list[RecommendedItemOut]


def render(
    result: RecommendationResult, catalog: CatalogSnapshot, *, include_items: bool = True
) -> JSONBody:
    """The :class:`RecommendationsOut` document, serialized directly with orjson (each item's
    JSON is cached by the catalogue snapshot): the hot path skips building and re-validating
    response models; a test keeps the document equal to validating through the model."""

    return JSONBody(
        {
            "recommendation_id": result.recommendation_id,
            "personalized": result.personalized,
            "model_version": result.model_version,
            "sources": result.sources,
            "warnings": result.warnings,
            "items": items_json(result.items, catalog, include_items=include_items),
        }
    )


def items_json(
    items: list[RecommendedItem], catalog: CatalogSnapshot, *, include_items: bool = True
) -> list[dict[str, Any]]:
    """Each :class:`RecommendedItemOut` as a dict (item payloads as cached JSON fragments)."""

    def item_json(item: RecommendedItem) -> orjson.Fragment | None:
        if not include_items or item.item is None:
            return None
        cached = catalog.item_json(item.item_id) if catalog.get(item.item_id) is item.item else None
        return orjson.Fragment(cached or item.item.model_dump_json().encode())

    return [
        {
            "item_id": i.item_id,
            "score": float(i.score),
            "source": i.source,
            "explanation": i.explanation,
            "reasons": i.reasons,
            "item": item_json(i),
        }
        for i in items
    ]


class RerankIn(BaseModel):
    user_id: Identifier | None = None
    anonymous_id: Identifier | None = None
    item_ids: list[Identifier] = Field(min_length=1, max_length=MAX_RESULTS)
    context: Context = Field(default_factory=Context)
    explain: bool = False
    language: Literal["en", "ru"] = "en"


class RecommendationRequestIn(RecommendationRequest):
    """The body of ``POST /v1/recommendations``: the request, plus every option of the GET
    form (``include_items``: false answers ids, scores and reasons without item payloads)."""

    include_items: bool = True


@router.post(
    "/recommendations",
    response_model=RecommendationsOut,
    summary="Recommendations for a user or an anonymous session",
)
async def recommend(
    body: RecommendationRequestIn, key: ServeKey, engine: EngineDep, experiments: ExperimentsDep
) -> JSONBody:
    request = RecommendationRequest.model_validate(body.model_dump(exclude={"include_items"}))
    return await serve(engine, experiments, key.tenant, request, include_items=body.include_items)


async def serve(
    engine: Engine,
    experiments: ExperimentsRuntime,
    tenant: str,
    request: RecommendationRequest,
    *,
    include_items: bool = True,
) -> JSONBody:
    """Serve one request on the event loop: the chain is CPU work over in-memory state (a few
    milliseconds), and a thread hop per request would cost more than it saves. Requests under
    a running serving experiment write exposures and may load a pinned model, so they run in
    the thread pool instead, as do requests with segment rules (a person this process has not
    evaluated yet is evaluated first)."""

    def work() -> JSONBody:
        result, _ = recommend_in_experiments(
            experiments, engine.service, tenant, request, pinned=engine.bundles.pinned
        )
        return render(result, engine.catalogs.get(tenant), include_items=include_items)

    weather = engine.weather
    if weather is not None and weather.needs_fetch(request.context):
        # a cache miss asks the provider (up to weather_timeout_seconds): off the event loop
        return await run_in_threadpool(work)
    if request.subject is not None and (request.segment_rules or any(
        affects_serving(e) for e in experiments.running(tenant)
    )):
        return await run_in_threadpool(work)
    return work()


@router.get(
    "/recommendations",
    response_model=RecommendationsOut,
    summary="Recommendations (simple query-string form)",
)
async def recommend_get(
    access: ServeAccess,
    engine: EngineDep,
    experiments: ExperimentsDep,
    user_id: Identifier | None = None,
    anonymous_id: Identifier | None = None,
    n: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 10,
    item_type: Annotated[list[Name] | None, Query()] = None,
    category: Annotated[list[Label] | None, Query(max_length=limits.MAX_LIST_LENGTH)] = None,
    explain: bool = False,
    language: Literal["en", "ru"] = "en",
    country: ShortText | None = None,
    city: ShortText | None = None,
    device: ShortText | None = None,
    channel: Name | None = None,
    latitude: Annotated[float | None, Query(ge=-90, le=90, allow_inf_nan=False)] = None,
    longitude: Annotated[float | None, Query(ge=-180, le=180, allow_inf_nan=False)] = None,
    weather: Annotated[WeatherCondition | None, Query(
        description="context.weather.condition (else the weather provider's, when "
        "configured and latitude / longitude are given)")] = None,
    temperature_c: Annotated[float | None, Query(ge=-90, le=60, allow_inf_nan=False)] = None,
    repetition_penalty: Annotated[float, Query(
        gt=0, le=1, description="score factor per unclicked impression; 1 = off")] = 0.5,
    repetition_hours: Annotated[float, Query(
        ge=0, le=24 * 7, description="how long an unclicked impression counts")] = 24.0,
    cold_slots: Annotated[int | None, Query(
        ge=0, le=MAX_RESULTS, description="places of the n kept for cold items (the model "
        "does not know them yet) matching the person; unset = the tenant's default")] = None,
    include_items: bool = True,
) -> JSONBody:
    access.check(user_id, anonymous_id)  # a browser key: only its visitor's recommendations
    located = country or city or latitude is not None or longitude is not None
    if (latitude is None) != (longitude is None):
        raise InvalidInput("give latitude and longitude together",
                           field="latitude" if latitude is None else "longitude",
                           accepted="both coordinates, in degrees")
    location = Location(country=country, city=city, latitude=latitude,
                        longitude=longitude) if located else None
    conditions = (Weather(condition=weather, temperature_c=temperature_c)
                  if weather is not None or temperature_c is not None else None)
    request = RecommendationRequest(
        user_id=user_id,
        anonymous_id=anonymous_id,
        n=n,
        item_types=item_type or [],
        filters=Filters(categories=category or []),
        explain=explain,
        language=language,
        context=Context(location=location, device=device, channel=channel, weather=conditions),
        repetition=Repetition(penalty=repetition_penalty, hours=repetition_hours),
        cold_slots=cold_slots,
        # the snippet records the impression itself when the widget is actually seen (event
        # id imp-<recommendation_id>, the id a served impression would have had): docs/web.md
        log_impression=access.visitor is None,
    )
    return await serve(engine, experiments, access.tenant, request, include_items=include_items)


@router.post(
    "/recommendations/rerank",
    response_model=RecommendationsOut,
    summary="Personally re-rank a list the client supplies (search results, a category)",
)
def rerank(body: RerankIn, key: ServeKey, engine: EngineDep) -> JSONBody:
    request = RecommendationRequest(
        user_id=body.user_id,
        anonymous_id=body.anonymous_id,
        n=len(body.item_ids),
        context=body.context,
        explain=body.explain,
        language=body.language,
        filters=Filters(item_ids=body.item_ids, available_only=False),
        exclude=Exclusions(seen_days=None, bought=False, disliked=True),
    )
    return render(engine.service.recommend(key.tenant, request), engine.catalogs.get(key.tenant))


@router.get(
    "/items/{item_id}/similar",
    response_model=RecommendationsOut,
    summary="Items similar to one item, optionally re-ranked for a user",
)
def similar(
    item_id: Identifier,
    access: ServeAccess,
    engine: EngineDep,
    n: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 10,
    user_id: Identifier | None = None,
    explain: bool = False,
    language: Literal["en", "ru"] = "en",
) -> JSONBody:
    if access.visitor is not None:  # a browser key: re-ranked for its own visitor only
        if user_id is not None:
            access.check(user_id)
        else:
            user_id = access.visitor.user_id
    result = engine.service.similar(
        access.tenant, item_id, n, user_id=user_id, explain=explain, language=language
    )
    return render(result, engine.catalogs.get(access.tenant))


@router.get(
    "/items/{item_id}/bought-together",
    response_model=RecommendationsOut,
    summary="Items most often bought in the same baskets as one item",
)
def bought_together(
    item_id: Identifier,
    key: ServeKey,
    engine: EngineDep,
    n: Annotated[int, Query(ge=1, le=MAX_RESULTS)] = 10,
    user_id: Identifier | None = None,
    explain: bool = False,
    language: Literal["en", "ru"] = "en",
) -> JSONBody:
    result = engine.service.bought_together(
        key.tenant, item_id, n, user_id=user_id, explain=explain, language=language
    )
    return render(result, engine.catalogs.get(key.tenant))


MAX_SESSION_ITEMS = 100
"""Interactions a session-only request may carry (the newest of a longer visit suffice)."""
MAX_SESSION_RESULTS = 50


class SessionInteractionIn(BaseModel):
    """One interaction of the current visit, kept by the client (never stored here)."""

    model_config = ConfigDict(extra="forbid")

    item_id: Identifier
    type: Literal["view", "add_to_cart", "purchase", "click"] = "view"
    timestamp: AwareDatetime | None = Field(
        default=None, description="when (with a time zone); default: in list order, oldest first"
    )


class SessionRecommendationIn(BaseModel):
    """The body of ``POST /v1/recommendations/session``: personalization without a profile.
    It names nobody (no ``user_id`` / ``anonymous_id``: refused as unknown fields)."""

    model_config = ConfigDict(extra="forbid")

    items: list[SessionInteractionIn] = Field(
        default_factory=list, max_length=MAX_SESSION_ITEMS,
        description="the visit's interactions, oldest first",
    )
    n: int = Field(default=10, ge=1, le=MAX_SESSION_RESULTS)
    widget: Name | None = Field(default=None, description="the asking widget (not stored)")
    context: Context = Field(default_factory=Context)
    item_types: list[Name] = Field(default_factory=list, max_length=20)
    filters: Filters = Field(default_factory=Filters)
    explain: bool = True
    language: Literal["en", "ru"] = "en"
    include_items: bool = True


def session_interactions(
    items: list[SessionInteractionIn], now: datetime
) -> list[Interaction]:
    """The body's interactions; one without a time is placed in list order before ``now``
    (a millisecond apart), a time in the future is read as ``now``."""
    out = []
    for k, entry in enumerate(items):
        when = entry.timestamp or now - timedelta(milliseconds=len(items) - k)
        out.append(Interaction(entry.item_id, entry.type, min(when.astimezone(UTC), now)))
    return out


@router.post(
    "/recommendations/session",
    response_model=RecommendationsOut,
    summary="Recommendations from the current visit only (nothing about the visitor is stored)",
)
def recommend_session(
    body: SessionRecommendationIn, key: AnonymousServeKey, engine: EngineDep
) -> JSONBody:
    """Answers from the session-based sources and content similarity over ``items``; stores no
    event, no impression, nothing in the online state and logs no line with the items. The
    ``recommendation_id`` is linked to nobody (clicks quoting it are not attributed to a
    person either, unless the site sends them as events)."""
    request = RecommendationRequest(
        n=body.n,
        item_types=body.item_types,
        context=body.context,
        filters=body.filters,
        explain=body.explain,
        language=body.language,
        log_impression=False,
    )
    now = engine.service.clock()
    result = engine.service.recommend_session(
        key.tenant, request, session_interactions(body.items, now)
    )
    return render(result, engine.catalogs.get(key.tenant), include_items=body.include_items)
