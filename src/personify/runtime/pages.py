"""Personalized pages of rows: ``GET /v1/pages/{name}`` answers an ordered list of rows for one
person ("Continue where you left off", "Because you viewed X", "Popular in <category>", "New
for you", "Trending near you", "Upcoming events for you", operator-defined rows), each with a
title and a reason in the person's language, its items, and no item in two rows.

Row order is learned per person: every page is a decision of the contextual bandit of its
decision point ``page:<name>`` (:mod:`personify.runtime.decision_points`; LinUCB with epsilon
exploration by default) over the rows that have items, with the person's context as features
(device, channel, country, personalized or not, how much history). The decision is logged with
each position's propensity in the decision log, so the off-policy estimators of
:mod:`personify.experiments.ope` (``personify ope --format personify --point page:home``)
evaluate another row policy from the same log. Rewards flow back as ordinary events: a click
(add to cart, purchase) on an item of a row quotes the row's ``recommendation_id`` and carries
``properties.page_id`` / ``properties.row_id``; :meth:`Pages.on_events` turns it into the
row's reward. Only rows that were *seen* and never clicked are rewarded 0 when the decision's
window closes; a row never seen neither earns nor loses (the decision is ``seen_only``). What
counts as seen depends on who reports impressions (``impressions``):

* ``served`` (a server-side caller; the default for server keys): every row in the answer is
  logged as an impression and counts as seen (a row the bandit chose whose items all went to
  rows above it is not in the answer, so it does not count);
* ``reported`` (the web snippet, always for browser keys): nothing is logged when the page is
  served; the caller sends an ``impression`` event quoting ``properties.page_id`` /
  ``properties.row_id`` when a row's items come into view, and only those rows count.

Each row's items are logged as an impression (the row's ``recommendation_id``, with ``page``,
``page_id``, ``row_id``, ``row_position`` in the impression's ``context.extra``), so item
clicks are attributed as on any recommendation.

Page definitions are JSON documents in the definitions table (kind ``page``, next to the
messaging definitions); ``home`` exists without one (:data:`DEFAULT_HOME`)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from personify.domain._fields import Label, Name, ShortText
from personify.domain.errors import InvalidInput, NotFound
from personify.domain.events import Context, Event
from personify.runtime.decision_points import (
    DECISION_ID_PREFIX,
    DecisionPointConfig,
    DecisionPoints,
)
from personify.serving.chain import RecommendationResult, RecommendationService, RecommendedItem
from personify.serving.explanations import Reason, explain
from personify.serving.request import Filters, PropertyCondition, RecommendationRequest
from personify.serving.sources import RequestScope
from personify.storage.sql.messaging_definitions import SqlMessagingDefinitions

Feature = float | int | str | bool | None
KIND = "page"
"""The definitions table's kind of page documents."""
DEFAULT_PAGE = "home"
MAX_ROWS = 20
DEFINITION_TTL_S = 5.0
"""How long a process serves a page definition before reading it again."""
MAX_ROW_ITEMS = 50
LANGUAGES = ("en", "ru")
Language = Literal["en", "ru"]
RowKind = Literal[
    "continue", "because_you_viewed", "recommended", "popular_in_category", "new_for_you",
    "trending_near_you", "upcoming_events", "custom",
]
ROW_KINDS: tuple[str, ...] = (
    "continue", "because_you_viewed", "recommended", "popular_in_category", "new_for_you",
    "trending_near_you", "upcoming_events", "custom",
)
EVENT_DATE = "starts_at"
"""The item property holding an event's start (ISO 8601, UTC): items with one in the future
fill "Upcoming events for you"."""
REWARD_TYPES = {"click": 1.0, "add_to_cart": 1.0, "purchase": 1.0}
SEEN_TYPE = "impression"
"""The event type that reports a row as seen (with ``properties.page_id`` / ``row_id``)."""
Impressions = Literal["served", "reported"]
IMPRESSION_MODES: tuple[str, ...] = ("served", "reported")
CONTINUE_TYPES = frozenset({"view", "click", "add_to_cart"})

TITLES: dict[str, dict[str, str]] = {
    "continue": {"en": "Continue where you left off",
                 "ru": "Продолжите с того места, где остановились"},
    "because_you_viewed": {"en": "Because you viewed {title}",
                           "ru": "Потому что вы смотрели «{title}»"},
    "recommended": {"en": "Recommended for you", "ru": "Рекомендуем вам"},
    "popular_in_category": {"en": "Popular in {category}", "ru": "Популярное: {category}"},
    "new_for_you": {"en": "New for you", "ru": "Новинки для вас"},
    "trending_near_you": {"en": "Trending near you", "ru": "Популярно рядом с вами"},
    "upcoming_events": {"en": "Upcoming events for you", "ru": "Ближайшие события для вас"},
    "custom": {"en": "Selected for you", "ru": "Подборка для вас"},
}
"""Each row kind's title, per language (``{title}``, ``{category}`` filled per person)."""
REASONS: dict[str, dict[str, str]] = {
    "continue": {"en": "You looked at these recently and have not bought them yet",
                 "ru": "Вы недавно смотрели это, но ещё не купили"},
    "because_you_viewed": {"en": "Similar to {title}, which you viewed",
                           "ru": "Похоже на «{title}», что вы смотрели"},
    "recommended": {"en": "Picked from everything you did", "ru": "Подобрано по вашим действиям"},
    "popular_in_category": {"en": "You often look at {category}",
                            "ru": "Вы часто смотрите «{category}»"},
    "popular_in_category_fixed": {"en": "Popular with everyone in {category}",
                                  "ru": "Популярно у всех в категории «{category}»"},
    "new_for_you": {"en": "Fresh arrivals that match what you like",
                    "ru": "Новые поступления в духе того, что вам нравится"},
    "trending_near_you": {"en": "Popular right now in {place}",
                          "ru": "Популярно сейчас: {place}"},
    "upcoming_events": {"en": "Events starting soon that match your interests",
                        "ru": "Скоро начнутся события по вашим интересам"},
    "custom": {"en": "Chosen for this page", "ru": "Выбрано для этой страницы"},
}


class RowDefinition(BaseModel):
    """One row of a page: a built-in ``kind``, or ``custom`` (a list of chain sources plus
    filters). ``title`` / ``reason`` override the built-in wording per language."""

    model_config = ConfigDict(extra="forbid")

    id: Name
    kind: RowKind
    n: int = Field(default=10, ge=1, le=MAX_ROW_ITEMS, description="items in the row")
    title: dict[Language, ShortText] = Field(default_factory=dict)
    reason: dict[Language, ShortText] = Field(default_factory=dict)
    sources: list[Name] | None = Field(
        default=None, max_length=20, description="custom rows: the chain sources to ask"
    )
    filters: Filters = Field(default_factory=Filters)
    item_types: list[Name] = Field(default_factory=list, max_length=20)
    category: Label | None = Field(
        default=None, description="popular_in_category: this category instead of the person's"
    )

    @model_validator(mode="after")
    def _custom_needs_sources(self) -> RowDefinition:
        if self.kind == "custom" and not self.sources:
            raise ValueError("a custom row needs sources (the chain sources it asks)")
        if self.kind != "custom" and self.sources is not None:
            raise ValueError(f"sources apply to custom rows only, not to {self.kind!r}")
        return self


class PageDefinition(BaseModel):
    """A page: its candidate rows and how many of them to show, and its row policy."""

    model_config = ConfigDict(extra="forbid")

    rows: list[RowDefinition] = Field(min_length=1, max_length=MAX_ROWS)
    max_rows: int | None = Field(default=None, ge=1, le=MAX_ROWS,
                                 description="show at most this many rows (the best first)")
    policy: DecisionPointConfig = Field(
        default_factory=lambda: DecisionPointConfig(epsilon=0.1, reward_types=REWARD_TYPES),
        description="the contextual bandit ordering the rows (decision point page:<name>)",
    )

    @model_validator(mode="after")
    def _unique_rows(self) -> PageDefinition:
        ids = [r.id for r in self.rows]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"row ids must be unique: {', '.join(twice)}")
        return self


DEFAULT_HOME = PageDefinition(rows=[
    RowDefinition(id="continue", kind="continue"),
    RowDefinition(id="because_you_viewed", kind="because_you_viewed"),
    RowDefinition(id="recommended", kind="recommended"),
    RowDefinition(id="popular_in_category", kind="popular_in_category"),
    RowDefinition(id="new_for_you", kind="new_for_you"),
    RowDefinition(id="trending_near_you", kind="trending_near_you"),
    RowDefinition(id="upcoming_events", kind="upcoming_events"),
])
"""The ``home`` page when the operator has not defined one."""


@dataclass
class Row:
    row_id: str
    kind: str
    title: str
    reason: str
    recommendation_id: str
    position: int
    propensity: float
    items: list[RecommendedItem]
    sources: list[str] = field(default_factory=list)


@dataclass
class Page:
    name: str
    page_id: str
    """The row decision's id (``dec-...``): clicks quote it as ``properties.page_id``."""
    policy: str
    language: str
    personalized: bool
    rows: list[Row]
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Candidate:
    definition: RowDefinition
    result: RecommendationResult
    request: RecommendationRequest
    title_params: dict[str, str]
    reason_key: str


def point_name(page: str) -> str:
    return f"page:{page}"


def _words(templates: Mapping[str, str], overrides: Mapping[Any, str], language: str,
           params: Mapping[str, str]) -> str:
    template = overrides.get(language) or overrides.get("en") if overrides else None
    template = template or templates.get(language) or templates["en"]
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template


def row_hit(event: Event) -> tuple[str, str] | None:
    """``(page_id, row_id)`` of an event on an item of a page's row (its properties quote
    both), else None."""
    page_id = event.properties.get("page_id") if event.properties else None
    row_id = event.properties.get("row_id") if event.properties else None
    if (isinstance(page_id, str) and page_id.startswith(DECISION_ID_PREFIX)
            and isinstance(row_id, str) and row_id):
        return page_id, row_id
    return None


def row_seen(event: Event) -> tuple[str, str] | None:
    """``(page_id, row_id)`` of an ``impression`` of a page's row, else None: one reported by
    the caller (``properties.page_id`` / ``row_id``, ``impressions=reported``) or logged when
    the page was served (``context.extra``, ``impressions=served``)."""
    if event.type != SEEN_TYPE:
        return None
    hit = row_hit(event)
    if hit is not None:
        return hit
    extra = event.context.extra
    page_id, row_id = extra.get("page_id"), extra.get("row_id")
    if (isinstance(page_id, str) and page_id.startswith(DECISION_ID_PREFIX)
            and isinstance(row_id, str) and row_id):
        return page_id, row_id
    return None


class Pages:
    """Page definitions (stored per tenant) and the composition of a page for one person."""

    def __init__(
        self,
        definitions: SqlMessagingDefinitions,
        service: RecommendationService,
        points: DecisionPoints,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.definitions = definitions
        self.service = service
        self.points = points
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, PageDefinition | None]] = {}

    # -- definitions ------------------------------------------------------------------------

    def names(self, tenant: str) -> list[str]:
        stored = [d.name for d in self.definitions.list(tenant, KIND)]
        return sorted({DEFAULT_PAGE, *stored})

    def definition(self, tenant: str, name: str) -> PageDefinition:
        """The stored definition, the default ``home``, or NotFound naming ``name``. Read
        from the database at most every :data:`DEFINITION_TTL_S` seconds per page (a change
        made through another process is served within that time; through this one at once)."""
        now = time.monotonic()
        cached = self._cache.get((tenant, name))
        if cached is not None and now - cached[0] < DEFINITION_TTL_S:
            if cached[1] is None:
                raise self._missing(tenant, name)
            return cached[1]
        stored = self.definitions.get(tenant, KIND, name)
        if stored is None:
            page = DEFAULT_HOME if name == DEFAULT_PAGE else None
        else:
            page = PageDefinition.model_validate(stored.body)
        self._cache[(tenant, name)] = (now, page)
        if page is None:
            raise self._missing(tenant, name)
        return page

    def _missing(self, tenant: str, name: str) -> NotFound:
        return NotFound(f"no page {name!r}", field="name", accepted=", ".join(self.names(tenant)))

    def is_defined(self, tenant: str, name: str) -> bool:
        return self.definitions.get(tenant, KIND, name) is not None

    def put(self, tenant: str, name: str, page: PageDefinition) -> PageDefinition:
        """Store (replace) a page; its row policy starts learning afresh."""
        self.check(page)
        self.definitions.put(tenant, KIND, name, page.model_dump(mode="json"), enabled=True)
        self.points.configure(tenant, point_name(name), page.policy)
        self._cache.pop((tenant, name), None)
        return page

    def delete(self, tenant: str, name: str) -> bool:
        """Remove a stored page (``home`` then falls back to the default)."""
        self._cache.pop((tenant, name), None)
        return self.definitions.delete(tenant, KIND, name)

    def check(self, page: PageDefinition) -> None:
        """Refuse custom rows naming a source the chain does not know (naming the field)."""
        known = self.service.sources
        for k, row in enumerate(page.rows):
            for source in row.sources or []:
                if source not in known:
                    raise InvalidInput(
                        f"row {row.id!r} names an unknown source {source!r}",
                        field=f"rows.{k}.sources", accepted=", ".join(sorted(known)),
                    )

    # -- composing a page -------------------------------------------------------------------

    def render(
        self,
        tenant: str,
        name: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        language: str | None = None,
        context: Context | None = None,
        rows: Sequence[str] | None = None,
        explain: bool = True,
        log: bool = True,
        impressions: Impressions = "served",
    ) -> Page:
        """The page for one person (or nobody: the non-personal rows). ``rows`` restricts it
        to some row ids (unknown ids are refused naming ``rows``). ``log=False`` shows the page
        without logging impressions or a decision (the dashboard's "view as").
        ``impressions="served"`` logs every row served as an impression, seen;
        ``"reported"`` logs the decision but no row impression: the caller (the web snippet)
        reports the rows the visitor actually sees, and only those count for the row policy."""
        if impressions not in IMPRESSION_MODES:
            raise InvalidInput(f"unknown impressions mode {impressions!r}", field="impressions",
                               accepted=", ".join(IMPRESSION_MODES))
        page = self.definition(tenant, name)
        wanted = page.rows
        if rows:
            known = {r.id for r in page.rows}
            unknown = [r for r in rows if r not in known]
            if unknown:
                raise NotFound(f"page {name!r} has no row {unknown[0]!r}", field="rows",
                               accepted=", ".join(r.id for r in page.rows))
            wanted = [r for r in page.rows if r.id in set(rows)]
        context = context or Context()
        base = RecommendationRequest(user_id=user_id, anonymous_id=anonymous_id, context=context,
                                     log_impression=False)
        # the rows share the person, the moment and each source's answer (a source asked by
        # two rows with the same filters answers once)
        scope = replace(self.service.scope_for(tenant, base), shared={})
        lang = self._language(language, scope, context)
        candidates = [c for c in (self._candidate(tenant, scope, r, lang, explain)
                                  for r in wanted) if c is not None and c.result.items]
        warnings = list(scope.warnings)
        if not candidates:
            return Page(name, "", "none", lang, scope.personalized, [], warnings)
        k = min(len(candidates), page.max_rows or len(candidates))
        by_id = {c.definition.id: c for c in candidates}
        features = self._features(scope, context)
        if log:
            point = point_name(name)
            self.points.ensure(tenant, point, page.policy)
            outcome = self.points.decide(tenant, point, features, list(by_id), k,
                                         log_later=True, seen_only=True)
            page_id, policy = outcome.decision.decision_id, outcome.policy
            decided_at = outcome.log.timestamp
            order, propensities = outcome.decision.ranked, outcome.decision.propensities
        else:  # a preview: the policy's current expectation, nothing explored or logged
            page_id, policy = f"preview-{uuid.uuid4().hex}", "preview"
            decided_at = self.clock()
            order = self.points.preview(tenant, point_name(name), features, list(by_id))[:k]
            propensities = [1.0] * k
        used: set[str] = set()
        out: list[Row] = []
        for position, (row_id, propensity) in enumerate(zip(order, propensities, strict=True)):
            cand = by_id[row_id]
            row = self._row(tenant, name, page_id, cand, position, propensity, used, lang,
                            log and impressions == "served")
            if row is not None:
                out.append(row)
        if log and impressions == "served":  # every row in the answer was shown
            self.points.mark_seen(tenant, [(page_id, r.row_id, decided_at) for r in out])
        return Page(name, page_id, policy, lang, scope.personalized, out, warnings)

    def on_events(self, tenant: str, events: Sequence[Event]) -> None:
        """Ingestion listener: an event on an item of a row rewards the row in its page's
        decision (as the decision points' own listener does for an action); an impression of
        a row's items marks the row seen (so it earns 0 if never clicked)."""
        rewards = []
        seen: dict[tuple[str, str], datetime] = {}
        for event in events:
            hit = row_hit(event)
            if hit is not None and event.type == SEEN_TYPE:
                if hit not in seen or event.timestamp < seen[hit]:
                    seen[hit] = event.timestamp
            elif hit is not None:
                rewards.append(Event.model_construct(
                    event_id=event.event_id, type=event.type, user_id=event.user_id,
                    anonymous_id=event.anonymous_id, item_id=hit[1], item_ids=[],
                    timestamp=event.timestamp, recommendation_id=hit[0], properties={},
                    context=event.context,
                ))
        if seen:
            self.points.mark_seen(tenant, [(p, r, at) for (p, r), at in seen.items()])
        if rewards:
            self.points.on_events(tenant, rewards)

    # -- rows --------------------------------------------------------------------------------

    @staticmethod
    def _language(language: str | None, scope: RequestScope, context: Context) -> str:
        for wanted in (language,
                       scope.user.profile.language if scope.user is not None else None,
                       context.locale):
            if wanted:
                primary = wanted.strip().lower().replace("_", "-").split("-")[0]
                if primary in LANGUAGES:
                    return primary
        return "en"

    @staticmethod
    def _features(scope: RequestScope, context: Context) -> dict[str, Feature]:
        history = len(scope.user_state.recent) if scope.user_state is not None else 0
        return {
            "personalized": scope.personalized,
            "history": "none" if history == 0 else "short" if history < 10 else "long",
            "device": context.device,
            "channel": context.channel,
            "country": context.location.country if context.location is not None else None,
        }

    def _candidate(
        self, tenant: str, scope: RequestScope, row: RowDefinition, lang: str, explain: bool
    ) -> _Candidate | None:
        """The row's candidate items (twice what it shows: later rows may lose some to earlier
        ones), or None when the row does not apply to this person."""
        personal = scope.personalized and scope.user_state is not None
        recent = scope.user_state.recent if personal and scope.user_state is not None else []
        want = min(MAX_ROW_ITEMS * 2, row.n * 2)
        request = RecommendationRequest(
            user_id=scope.request.user_id, anonymous_id=scope.request.anonymous_id,
            context=scope.request.context, n=want, explain=explain, language=lang,  # type: ignore[arg-type]
            filters=row.filters, item_types=row.item_types, log_impression=False,
        )
        catalog = scope.catalog
        if row.kind == "continue":
            if not recent:
                return None
            bought = scope.user_state.bought if scope.user_state is not None else {}
            ids = [i.item_id for i in recent if i.type in CONTINUE_TYPES
                   and i.item_id not in bought]
            ids = [i for i in dict.fromkeys(ids) if catalog.servable(i, scope.now, True)]
            items = []
            for k, item_id in enumerate(ids[:want]):
                reason = Reason("recently_viewed", "history", 1.0 / (1 + k))
                reasons, sentence = (explain_reasons([reason], lang) if explain else ([], ""))
                items.append(RecommendedItem(item_id, round(1.0 / (1 + k), 6), "history",
                                             reasons, sentence, catalog.get(item_id)))
            result = RecommendationResult(uuid.uuid4().hex, items, True,
                                          scope.bundle.version if scope.bundle else None,
                                          ["history"])
            return _Candidate(row, result, request, {}, "continue")
        if row.kind == "because_you_viewed":
            anchor = next((i.item_id for i in recent if catalog.get(i.item_id) is not None), None)
            if anchor is None:
                return None
            found = self.service.similar(tenant, anchor, want, user_id=scope.request.user_id,
                                         explain=explain, language=lang, scope=scope)
            item = catalog.get(anchor)
            title = item.title if item is not None and item.title else anchor
            return _Candidate(row, found, request, {"title": title}, "because_you_viewed")
        if row.kind == "recommended":
            if not personal:
                return None
            return self._chain(tenant, scope, row, request, {}, "recommended")
        if row.kind == "popular_in_category":
            category = row.category or self._top_category(scope, recent)
            if category is None:
                return None
            filters = row.filters.model_copy(update={"categories": [category]})
            request = request.model_copy(update={"filters": filters,
                                                 "sources": ["popular", "trending"]})
            key = "popular_in_category_fixed" if row.category else "popular_in_category"
            return self._chain(tenant, scope, row, request, {"category": category}, key)
        if row.kind == "new_for_you":
            request = request.model_copy(update={"sources": ["cold_content", "new_items"]})
            return self._chain(tenant, scope, row, request, {}, "new_for_you")
        if row.kind == "trending_near_you":
            location = scope.request.context.location
            place = (location.city or location.country) if location is not None else None
            if not place:
                return None
            request = request.model_copy(update={"sources": ["trending"]})
            return self._chain(tenant, scope, row, request, {"place": place}, "trending_near_you")
        if row.kind == "upcoming_events":
            condition = PropertyCondition(field=EVENT_DATE, op="gt",
                                          value=scope.now.isoformat())
            filters = row.filters.model_copy(
                update={"conditions": [*row.filters.conditions, condition]})
            request = request.model_copy(update={"filters": filters})
            return self._chain(tenant, scope, row, request, {}, "upcoming_events")
        return self._chain(tenant, scope, row, request.model_copy(update={"sources": row.sources}),
                           {}, "custom")

    def _chain(self, tenant: str, scope: RequestScope, row: RowDefinition,
               request: RecommendationRequest, params: dict[str, str],
               reason_key: str) -> _Candidate:
        result = self.service.recommend(tenant, request, scope=scope)
        return _Candidate(row, result, request, params, reason_key)

    @staticmethod
    def _top_category(scope: RequestScope, recent: Iterable[Any]) -> str | None:
        counts: Counter[str] = Counter()
        for inter in list(recent)[:50]:
            item = scope.catalog.get(inter.item_id)
            if item is not None:
                counts.update(item.categories[:1])
        return counts.most_common(1)[0][0] if counts else None

    def _row(
        self, tenant: str, page: str, page_id: str, cand: _Candidate, position: int,
        propensity: float, used: set[str], lang: str, log: bool,
    ) -> Row | None:
        row = cand.definition
        items = [i for i in cand.result.items if i.item_id not in used][: row.n]
        if not items:
            return None
        used.update(i.item_id for i in items)
        result = replace(cand.result, items=items)
        params = dict(cand.title_params)
        if "place" in params:
            params.setdefault("title", params["place"])
        title = _words(TITLES[row.kind], row.title, lang, params)
        reason = _words(REASONS[cand.reason_key], row.reason, lang, params)
        if log:
            extra = {**cand.request.context.extra, "page": page, "page_id": page_id,
                     "row_id": row.id, "row_position": position}
            context = cand.request.context.model_copy(update={"extra": extra})
            self.service.record_served(tenant, cand.request.model_copy(
                update={"context": context, "n": len(items)}), result)
        return Row(row.id, row.kind, title, reason, result.recommendation_id, position,
                   propensity, items, list(result.sources))


def explain_reasons(reasons: list[Reason], language: str) -> tuple[list[dict[str, Any]], str]:
    return explain(reasons, language)
