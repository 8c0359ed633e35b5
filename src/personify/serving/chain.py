"""The online recommendation chain: candidates -> filters and rules -> ranking -> diversity ->
explanations -> impression log. One ``Recommender service`` per process, shared by every request."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from personify.domain.errors import InvalidInput, Unavailable
from personify.domain.events import Context, Event
from personify.domain.items import Item
from personify.domain.limits import MAX_LIST_LENGTH
from personify.domain.tracing import span
from personify.domain.users import User
from personify.serving.bundle import ModelBundle
from personify.serving.catalog import CatalogSnapshot
from personify.serving.content_similarity import content_neighbours
from personify.serving.diversity import diversify
from personify.serving.explanations import Reason, explain
from personify.serving.filters import (
    SegmentsOf,
    active_boosts,
    apply_boosts,
    item_filter,
    narrowing,
    resolve_segment_rules,
)
from personify.serving.repetition import ShownItems, ShownLog
from personify.serving.request import RecommendationRequest
from personify.serving.source_registry import SourceRegistry, source_registry
from personify.serving.sources import CandidateSource, RequestScope, Scored
from personify.storage.online.port import Interaction, OnlineState, UserState

log = logging.getLogger(__name__)

SESSION_CONTENT_WEIGHT = 0.3
"""The weight of the session items' content neighbours in a session-only answer."""
SESSION_CONTENT_ANCHORS = 3
"""The newest distinct session items whose content neighbours are asked."""


class SessionContentSource:
    """Items like the session's newest items by their catalogue content (labels and words):
    what a session-only answer can say about items the trained model does not know."""

    name = "content"
    personal = True

    def candidates(self, scope: RequestScope, n: int) -> list[Scored]:
        if scope.user_state is None:
            return []
        anchors = list(dict.fromkeys(i.item_id for i in scope.user_state.session))
        best: dict[str, Scored] = {}
        for rank, anchor in enumerate(anchors[:SESSION_CONTENT_ANCHORS]):
            item = scope.catalog.get(anchor)
            title = item.title if item is not None and item.title else anchor
            for other, score in content_neighbours(scope.catalog, anchor, n):
                value = score / (1 + rank)
                if other not in best or best[other].score < value:
                    best[other] = Scored(other, value, Reason(
                        "similar_to", self.name, value, {"item_id": anchor, "title": title}))
        return sorted(best.values(), key=lambda s: (-s.score, s.item_id))[:n]


@dataclass
class RecommendedItem:
    item_id: str
    score: float
    source: str
    reasons: list[dict[str, Any]] = field(default_factory=list)
    explanation: str = ""
    item: Item | None = None
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class RecommendationResult:
    recommendation_id: str
    items: list[RecommendedItem]
    personalized: bool
    model_version: str | None
    sources: list[str]
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Candidate:
    item_id: str
    scores: dict[str, float] = field(default_factory=dict)
    reasons: list[Reason] = field(default_factory=list)
    final: float = 0.0
    tie: float = 0.0
    """The unweighted sum of the sources' shares: orders candidates the blend scores equally
    (e.g. from a source the learned blend weighs 0, asked alone)."""
    contributions: list[float] = field(default_factory=list)
    """Per reason, its source's weighted share of the score (filled by the pool)."""

    def weighted_reasons(self) -> list[Reason]:
        if len(self.contributions) != len(self.reasons):
            return self.reasons
        return [Reason(r.type, r.source, w, r.params)
                for r, w in zip(self.reasons, self.contributions, strict=True)]


class RecommendationService:
    """Serves recommendations for one or more tenants from a model bundle per tenant, the online
    state and an in-memory catalogue snapshot.

    ``bundles(tenant)`` returns the current bundle (or None before the first training);
    ``catalogs(tenant)`` the catalogue snapshot; ``users(tenant, user_id)`` the profile;
    ``personalization_allowed(tenant, user_id)`` the consent decision (default: allowed);
    ``log_impression(tenant, event)`` records what was shown.
    """

    def __init__(
        self,
        *,
        bundles: Callable[[str], ModelBundle | None],
        catalogs: Callable[[str], CatalogSnapshot],
        state: OnlineState | None,
        users: Callable[[str, str], User | None] = lambda tenant, user_id: None,
        personalization_allowed: Callable[[str, str], bool] = lambda tenant, user_id: True,
        muted: Callable[[str, str], set[str]] = lambda tenant, user_id: set(),
        log_impression: Callable[[str, Event], None] | None = None,
        sources: dict[str, CandidateSource] | None = None,
        source_order: Sequence[str] | None = None,
        candidates_per_source: int = 100,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        history: Callable[[str, str], Sequence[Event]] | None = None,
        registry: SourceRegistry | None = None,
    ) -> None:
        """``sources`` / ``source_order`` fix the chain's sources and default order; by default
        both come from the source registry, read live (a source registered later is served)."""
        self.bundles = bundles
        self.catalogs = catalogs
        self.state = state
        self.users = users
        self.personalization_allowed = personalization_allowed
        self.muted = muted
        self.log_impression = log_impression
        self.registry = registry or source_registry()
        self._sources = dict(sources) if sources is not None else None
        self._order = list(source_order) if source_order is not None else None
        self.candidates_per_source = candidates_per_source
        self.clock = clock
        self.history = history
        self.shown: ShownLog = ShownItems()
        self.cold_slots: Callable[[str], int] = lambda tenant: 0
        """The tenant's default number of places kept for cold items (``cold_slots`` of a
        request overrides it)."""
        """What each person was shown (anti-repetition; forgotten on erasure)."""
        self.enrich_context: Callable[[Context], Context] | None = None
        """Fills a request's context before anything reads it (the weather provider)."""
        self.segments_of: SegmentsOf | None = None
        """The person's live segments, for ``segment_rules`` (set by the runtime)."""

    @property
    def sources(self) -> dict[str, CandidateSource]:
        """The sources a request may name (a copy: assign to change them)."""
        return dict(self._sources if self._sources is not None else self.registry.sources())

    @sources.setter
    def sources(self, value: dict[str, CandidateSource]) -> None:
        self._sources = dict(value)

    @property
    def source_order(self) -> list[str]:
        return list(self._order if self._order is not None else self.registry.default_order())

    @source_order.setter
    def source_order(self, value: Sequence[str]) -> None:
        self._order = list(value)

    def recommend(
        self,
        tenant: str,
        request: RecommendationRequest,
        *,
        bundle: ModelBundle | None = None,
        scope: RequestScope | None = None,
    ) -> RecommendationResult:
        """``bundle`` overrides the tenant's live bundle (a model-vs-model experiment);
        ``scope`` reuses the person read by :meth:`scope_for` for the same person, context and
        moment (a page asks the chain once per row).

        Stages: who is asking (:meth:`_scope`), which sources at which weights (:meth:`_plan`),
        what must not be shown (:meth:`_excluded`), the candidate pool (:meth:`_gather`),
        ranking (:meth:`_rank`), rules and diversity (:meth:`_arrange`), the answer and its
        impression (:meth:`_respond`). Segment rules are resolved first, for the person."""
        request = resolve_segment_rules(tenant, request, self.segments_of)
        request = self._enriched(request)
        with span("personify.recommend", {"n": request.n}) as traced:
            with span("personify.recommend.scope"):
                if scope is not None and bundle is None:
                    if (scope.request.user_id, scope.request.anonymous_id) != (
                        request.user_id, request.anonymous_id
                    ):
                        raise ValueError("a reused scope must be the request's person")
                    scope = replace(scope, request=request, warnings=list(scope.warnings))
                else:
                    scope = self._scope(tenant, request, bundle)
            plan = self._plan(scope)
            # explicit exclusions, the user themself, their own items and what they muted hold
            # even without personalization (user_state is None then: no history is used)
            with span("personify.recommend.exclusions"):
                excluded = self._excluded(
                    tenant, request, scope.user_state, scope.catalog, scope.now
                )
                repeating = self.registry.repeating()
                rebuy = (
                    self._excluded(tenant, request, scope.user_state, scope.catalog, scope.now,
                                   bought=False)
                    if any(name in repeating for name, _, _ in plan) else excluded
                )
            with span("personify.recommend.gather", {"sources": len(plan)}):
                pool, used = self._gather(scope, plan, excluded, rebuy)
            with span("personify.recommend.rank", {"candidates": len(pool)}):
                ranked = self._rank(pool, scope.catalog, request, scope.bundle, scope)
            with span("personify.recommend.arrange"):
                slots = min(request.n, request.cold_slots if request.cold_slots is not None
                            else self.cold_slots(tenant))
                # the pool holds cold_content's candidates only if the gathering reached it
                # (it stops at a full pool after a fallback source)
                cold = self._cold(scope, pool, excluded, slots,
                                  asked="cold_content" in used) if slots else []
                chosen = self._arrange(ranked, scope.catalog, request, excluded, scope.now,
                                       cold=cold, cold_slots=slots,
                                       known=scope.bundle.items if scope.bundle else None)
                placed = {c.item_id for c in chosen}
                if "cold_content" not in used and any(c.item_id in placed for c in cold):
                    used = [*used, "cold_content"]
            result = self._respond(scope, chosen, used)
            if traced is not None:
                traced.set_attribute("personalized", result.personalized)
                traced.set_attribute("items", len(result.items))
                traced.set_attribute("model_version", result.model_version or "")
            return result

    def _enriched(self, request: RecommendationRequest) -> RecommendationRequest:
        enrich = self.enrich_context
        if enrich is None:
            return request
        context = enrich(request.context)
        return request if context is request.context else request.model_copy(
            update={"context": context})

    def scope_for(self, tenant: str, request: RecommendationRequest) -> RequestScope:
        """The request's person as the chain sees them (consent, restriction, profile, live
        state or stored history), for callers composing several answers (pages of rows)."""
        return self._scope(tenant, request, None)

    def record_served(
        self, tenant: str, request: RecommendationRequest, result: RecommendationResult
    ) -> None:
        """Log ``result`` as shown to ``request``'s person (impression + anti-repetition mark),
        as :meth:`recommend` does for a request with ``log_impression``; for callers that
        serve a list built with ``log_impression=False`` (a row of a page)."""
        subject = request.subject
        if subject is None or not result.items:
            return
        now = self.clock()
        if result.personalized:
            self.shown.record(tenant, subject, [i.item_id for i in result.items], now)
        if self.log_impression is not None:
            self._log(tenant, request, result, now)

    def recommend_session(
        self, tenant: str, request: RecommendationRequest, interactions: Sequence[Interaction]
    ) -> RecommendationResult:
        """Recommendations for a visitor without a profile, from the current session's
        interactions only (sent by the client, kept nowhere): the personal sources read a
        state built from ``interactions`` (the session-based ``session`` source, the
        neighbour fold-in of ``collaborative``, baskets, interests), the content of the
        session's items fills in what the model does not know, and the non-personal sources
        complete the list. Nothing is read for nor written about the visitor: no subject, no
        online state of theirs, no impression, no anti-repetition mark, no log line."""
        if request.subject is not None or request.log_impression:
            raise InvalidInput("a session request names nobody and logs nothing",
                               field="user_id")
        request = resolve_segment_rules(tenant, request, self.segments_of)
        request = self._enriched(request)
        now = self.clock()
        catalog = self.catalogs(tenant)
        bundle = self.bundles(tenant)
        warnings: list[str] = []
        if bundle is None:
            warnings.append("no trained model yet: using live popularity and content")
        recent = sorted(interactions, key=lambda i: i.timestamp, reverse=True)
        seen: dict[str, datetime] = {}
        bought: dict[str, datetime] = {}
        for inter in recent:
            seen.setdefault(inter.item_id, inter.timestamp)
            if inter.type in BOUGHT_TYPES:
                bought.setdefault(inter.item_id, inter.timestamp)
        user_state = UserState("session", recent, recent, seen, bought, {},
                               recent[0].timestamp if recent else None)
        scope = RequestScope(tenant, request, None, None, user_state, bundle, self.state,
                             catalog, now, True, warnings)
        plan = self._plan(scope)
        if recent and request.sources is None:
            session = self.sources.get("session")
            if session is not None and all(name != "session" for name, _, _ in plan):
                # before the first training the live co-occurrence answers alone
                weight = self.registry.default_weights().get("session", 1.0)
                plan.insert(0, ("session", session, weight))
            knn = self.sources.get("session_knn")
            if (knn is not None and bundle is not None and bundle.part("session_knn") is not None
                    and all(name != "session_knn" for name, _, _ in plan)):
                # the served V-SKNN over past visits (trained with the bundle)
                weight = self.registry.default_weights().get("session_knn", 1.0)
                if bundle.source_weights.get("session_knn"):
                    weight = bundle.source_weights["session_knn"]
                plan.insert(0, ("session_knn", knn, weight))
            plan.append(("content", SessionContentSource(), SESSION_CONTENT_WEIGHT))
        excluded = self._excluded(tenant, request, user_state, catalog, now)
        rebuy = self._excluded(tenant, request, user_state, catalog, now, bought=False)
        pool, used = self._gather(scope, plan, excluded, rebuy)
        ranked = self._rank(pool, catalog, request, bundle, scope)
        chosen = self._arrange(ranked, catalog, request, excluded, now)
        return self._respond(scope, chosen, used)

    def _scope(
        self, tenant: str, request: RecommendationRequest, bundle: ModelBundle | None
    ) -> RequestScope:
        """The request's person (consent, restriction, profile, live state), bundle and
        catalogue."""
        now = self.clock()
        catalog = self.catalogs(tenant)
        bundle = bundle if bundle is not None else self.bundles(tenant)
        warnings: list[str] = []
        subject = request.subject
        personalized = subject is not None and (
            request.user_id is None or self.personalization_allowed(tenant, request.user_id)
        )
        user = self.users(tenant, request.user_id) if personalized and request.user_id else None
        if user is not None and user.restricted:
            personalized, user = False, None
            warnings.append("processing of this user is restricted: results are not personalized")
        elif subject is not None and not personalized:
            warnings.append("no personalization consent: results are not personalized")
        user_state = self._user_state(tenant, subject, now, warnings) if personalized else None
        if bundle is None:
            warnings.append("no trained model yet: using live popularity and content")
        return RequestScope(tenant, request, subject, user, user_state, bundle, self.state,
                            catalog, now, personalized, warnings)

    def _plan(self, scope: RequestScope) -> list[tuple[str, CandidateSource, float]]:
        """The sources to ask, in order, each with its blend weight: the request's own list
        (validated) or the default order; personal sources only for personalized requests;
        a source whose needs the bundle lacks is not asked; nor is a personal source the
        learned blend weighs 0 (without a ranker that reads its scores it cannot move the
        order; a fallback can still fill a short list), unless the request names it or the
        person has no history yet: it then weighs its default. ``trending`` keeps at least its
        default weight for a request with a place or device in its context (its learned weight
        saw only the global ranking)."""
        sources, bundle, request = self.sources, scope.bundle, scope.request
        order = request.sources or self.source_order
        unknown = [s for s in order if s not in sources]
        if unknown:
            raise InvalidInput(
                f"unknown recommendation source {unknown[0]!r}",
                field="sources",
                accepted=", ".join(sorted(sources)),
            )
        defaults = self.registry.default_weights()
        weights = dict(defaults)
        if bundle is not None:
            weights.update(bundle.source_weights)
        ranked = bundle is not None and bundle.ranker is not None
        named = set(request.sources or ())
        # learned weights describe people with a history: for someone without one (declared
        # interests, a first visit), and for a source the request names, a personal source
        # learned at 0 keeps its default weight instead of being dropped
        cold = scope.user_state is None or not scope.user_state.recent
        context = request.context
        placed = bool(context.device or (context.location is not None and (
            context.location.city or context.location.country or context.location.region)))
        plan = []
        for name in order:
            source = sources[name]
            if source.personal and not scope.personalized:
                continue
            spec = self.registry.get(name)
            if spec is not None and spec.needs and (
                bundle is None or not all(bundle.provides(need) for need in spec.needs)
            ):
                continue
            weight = weights.get(name, 0.1)
            if name == "trending" and placed and weight < defaults.get(name, 0.0):
                # the blend learned trending from the global ranking (its validation log has
                # no request context): a request from a place or a device keeps at least the
                # default weight, so what is popular there still reaches the main list
                weight = defaults.get(name, 0.0)
            if weight == 0 and source.personal:
                if name in named or cold:
                    weight = defaults.get(name, 0.1) or 0.1
                elif not ranked:
                    continue
            plan.append((name, source, weight))
        return plan

    def _gather(
        self,
        scope: RequestScope,
        plan: list[tuple[str, CandidateSource, float]],
        excluded: set[str],
        rebuy: set[str],
    ) -> tuple[dict[str, _Candidate], list[str]]:
        """Ask each planned source and pool the visible candidates with their blend score
        (the sum over sources of weight x the source's share, kept current as they arrive);
        returns the pool and the sources that contributed. A repeat source (``buy_again``)
        is filtered by ``rebuy``, the exclusions without the bought items."""
        request, catalog, now = scope.request, scope.catalog, scope.now
        excluded_all = excluded
        pool: dict[str, _Candidate] = {}
        want = max(request.n * 3, 30)
        used: list[str] = []
        restrict = set(request.filters.item_ids) if request.filters.item_ids is not None else None
        allowed = item_filter(request.filters, request.item_types, now)
        decided: dict[str, bool] = {}  # one filter decision per item, however many sources
        # each source is asked for as many candidates as the answer can use (3 x n, at least
        # 30), unless filters may thin them out: then for its full list
        narrow = restrict is None and not narrowing(request.filters, request.item_types)
        asked = min(self.candidates_per_source, want) if narrow else self.candidates_per_source
        servable, available_only = catalog.servable, request.filters.available_only
        repeating = self.registry.repeating()
        decisions = decided
        shared = scope.shared
        # a source may read the request's filters: answers are shared between the same filters
        narrowed = "" if shared is None else repr((request.filters, request.item_types))
        for name, source, weight in plan:
            if name in repeating:
                excluded, decided = rebuy, {}
            else:
                excluded, decided = excluded_all, decisions
            try:
                with span("personify.source", {"source": name}) as traced:
                    key = (name, asked, narrowed)
                    found = shared.get(key) if shared is not None else None
                    if found is None:
                        found = source.candidates(scope, asked)
                        if shared is not None:
                            shared[key] = found
                    if traced is not None:
                        traced.set_attribute("candidates", len(found))
            except Unavailable as exc:
                scope.warnings.append(f"source {name} unavailable: {exc.message}")
                continue
            if not found:
                continue
            top = max(abs(s.score) for s in found) or 1.0
            added = False
            for scored in found:
                item_id = scored.item_id
                ok = decided.get(item_id)
                if ok is None:
                    if narrow:  # visibility only: by id, against the snapshot's views
                        ok = item_id not in excluded and servable(item_id, now, available_only)
                    else:
                        item = catalog.get(item_id)
                        ok = (
                            item_id not in excluded
                            and (restrict is None or item_id in restrict)
                            and item is not None
                            and allowed(item)
                        )
                    decided[item_id] = ok
                if not ok:
                    continue
                cand = pool.get(item_id)
                if cand is None:
                    cand = pool[item_id] = _Candidate(item_id)
                share = scored.score / top
                before = cand.scores.get(name)
                if before is None:
                    cand.scores[name] = share
                    cand.final += weight * share
                    cand.tie += share
                elif share > before:
                    cand.scores[name] = share
                    cand.final += weight * (share - before)
                    cand.tie += share - before
                cand.reasons.append(scored.reason)
                cand.contributions.append(weight * share)
                added = True
            if added:
                used.append(name)
            if len(pool) >= want * 2 and not source.personal:
                break  # enough to rank and diversify; later fallbacks would not place
        if restrict is not None:
            for item_id in restrict - set(pool) - excluded_all:
                item = catalog.get(item_id)
                if item is not None and allowed(item):
                    pool[item_id] = _Candidate(
                        item_id, {"requested": 0.0}, [Reason("requested_list", "requested", 0.0)]
                    )
        return pool, used

    def _respond(
        self, scope: RequestScope, chosen: list[_Candidate], used: list[str]
    ) -> RecommendationResult:
        """The answer (explained when asked) and its impression in the log."""
        request = scope.request
        if len(chosen) < request.n:
            scope.warnings.append(
                f"only {len(chosen)} items satisfy the filters (asked for {request.n})"
            )
        items = [self._present(c, scope.catalog, request) for c in chosen]
        result = RecommendationResult(
            uuid.uuid4().hex, items, scope.personalized,
            scope.bundle.version if scope.bundle else None, used, scope.warnings,
        )
        if request.log_impression and scope.subject is not None:
            if result.items and scope.personalized:
                self.shown.record(scope.tenant, scope.subject,
                                  [i.item_id for i in result.items], scope.now)
            if self.log_impression is not None:
                self._log(scope.tenant, request, result, scope.now)
        return result

    def similar(
        self,
        tenant: str,
        item_id: str,
        n: int,
        *,
        user_id: str | None = None,
        explain: bool = False,
        language: str = "en",
        scope: RequestScope | None = None,
    ) -> RecommendationResult:
        """Items like ``item_id`` (trained neighbours + live co-occurrence; for an item neither
        knows, e.g. one added since training, its categories, tags and words); with ``user_id``
        and consent, re-weighted by that user's own history and without what they already
        have. ``scope`` (of :meth:`scope_for`, for ``user_id``) reuses the person already
        read."""
        if scope is not None and scope.request.user_id != user_id:
            raise ValueError("a reused scope must be user_id's")
        now = scope.now if scope is not None else self.clock()
        catalog = scope.catalog if scope is not None else self.catalogs(tenant)
        bundle = scope.bundle if scope is not None else self.bundles(tenant)
        warnings: list[str] = []
        anchor = catalog.get(item_id)
        title = anchor.title if anchor is not None and anchor.title else item_id
        scores: dict[str, float] = {}
        if bundle is not None:
            pairs = bundle.similar(item_id, n * 3)
            top = max((s for _, s in pairs), default=1.0) or 1.0
            scores.update({i: s / top for i, s in pairs})
        if self.state is not None:
            try:
                live = self.state.neighbours(tenant, item_id, n * 3)
            except Unavailable as exc:
                live = []
                warnings.append(f"online state unavailable: {exc.message}")
            top = max((s for _, s in live), default=1.0) or 1.0
            for i, s in live:
                scores[i] = scores.get(i, 0.0) + 0.5 * s / top
        if scope is not None:
            personalized = bool(user_id) and scope.personalized
        else:
            personalized = bool(user_id) and self.personalization_allowed(tenant, user_id or "")
        excluded = {item_id}
        if user_id:
            excluded |= {user_id} | catalog.authored_by(user_id) | self.muted(tenant, user_id)
        if personalized and user_id and bundle is not None:
            user_state = (scope.user_state if scope is not None
                          else self._user_state(tenant, user_id, now, warnings))
            if user_state is not None:
                excluded |= set(user_state.bought) | set(user_state.disliked)
                history = [i.item_id for i in user_state.recent[:50]]
                if history and scores:
                    ids = list(scores)
                    affinity = bundle.history_affinity(history, ids)
                    for i, a in zip(ids, affinity, strict=True):
                        scores[i] += 0.5 * float(a)
        source = "similar"
        if not scores:  # an item the model does not know yet: its content speaks for it
            scores, source = dict(content_neighbours(catalog, item_id, n * 3)), "content"
        return self._item_list(scores, excluded, item_id, title, "similar_to", source,
                               n=n, user_id=user_id, explain=explain, language=language,
                               catalog=catalog, now=now, personalized=personalized,
                               bundle=bundle, warnings=warnings)

    def bought_together(
        self,
        tenant: str,
        item_id: str,
        n: int,
        *,
        user_id: str | None = None,
        explain: bool = False,
        language: str = "en",
    ) -> RecommendationResult:
        """Items most often in the same baskets as ``item_id`` (the ``bought_together`` part of
        the bundle, trained from purchases); with ``user_id`` and consent, without what that
        person already bought. Empty, with a warning, when the model has no basket rules."""
        now = self.clock()
        catalog = self.catalogs(tenant)
        bundle = self.bundles(tenant)
        warnings: list[str] = []
        rules = bundle.part("bought_together") if bundle is not None else None
        scores: dict[str, float] = {}
        if rules is None:
            warnings.append("no basket rules in the current model (it was trained without "
                            "purchases): nothing is bought together yet")
        else:
            pairs = rules.together(item_id, n * 3)
            top = max((s for _, s in pairs), default=1.0) or 1.0
            scores = {i: s / top for i, s in pairs}
        anchor = catalog.get(item_id)
        title = anchor.title if anchor is not None and anchor.title else item_id
        personalized = bool(user_id) and self.personalization_allowed(tenant, user_id or "")
        excluded = {item_id}
        if user_id:
            excluded |= {user_id} | catalog.authored_by(user_id) | self.muted(tenant, user_id)
            if personalized:
                user_state = self._user_state(tenant, user_id, now, warnings)
                if user_state is not None:
                    excluded |= set(user_state.bought) | set(user_state.disliked)
        return self._item_list(scores, excluded, item_id, title, "bought_together",
                               "bought_together", n=n, user_id=user_id, explain=explain,
                               language=language, catalog=catalog, now=now,
                               personalized=personalized, bundle=bundle, warnings=warnings)

    def _item_list(
        self, scores: dict[str, float], excluded: set[str], anchor: str, title: str,
        kind: str, source: str, *, n: int, user_id: str | None, explain: bool, language: str,
        catalog: CatalogSnapshot, now: datetime, personalized: bool,
        bundle: ModelBundle | None, warnings: list[str],
    ) -> RecommendationResult:
        """The best ``n`` visible items of ``scores``, each explained by ``kind`` of ``anchor``."""
        request = RecommendationRequest(n=n, explain=explain, language=language, user_id=user_id)  # type: ignore[arg-type]
        ranked = []
        allowed = item_filter(request.filters, [], now)
        for i, s in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])):
            item = catalog.get(i)
            if i in excluded or item is None or not allowed(item):
                continue
            reason = Reason(kind, source, s, {"item_id": anchor, "title": title})
            ranked.append(_Candidate(i, {source: s}, [reason], s))
            if len(ranked) >= n:
                break
        items = [self._present(c, catalog, request) for c in ranked]
        return RecommendationResult(
            uuid.uuid4().hex,
            items,
            personalized,
            bundle.version if bundle else None,
            [source],
            warnings,
        )

    def _user_state(
        self, tenant: str, subject: str | None, now: datetime, warnings: list[str]
    ) -> UserState | None:
        """The live state; when it knows nothing of the user (a restart, an expired or a Redis
        outage), their stored history stands in, read-only."""
        if subject is None:
            return None
        state: UserState | None = None
        if self.state is not None:
            try:
                state = self.state.user_state(tenant, subject, now=now)
            except Unavailable as exc:
                warnings.append(f"online state unavailable: {exc.message}")
        if (state is None or not state.recent) and self.history is not None:
            stored = state_from_history(subject, self.history(tenant, subject))
            if stored.recent:
                return stored
        return state

    def _excluded(
        self,
        tenant: str,
        request: RecommendationRequest,
        user_state: UserState | None,
        catalog: CatalogSnapshot,
        now: datetime,
        *,
        bought: bool = True,
    ) -> set[str]:
        out = set(request.exclude.items)
        if request.user_id is not None:
            out.add(request.user_id)
            out |= catalog.authored_by(request.user_id)
            out |= self.muted(tenant, request.user_id)
        if user_state is not None:
            window = request.exclude.seen_days
            if window is not None:
                cutoff = now - timedelta(days=window)
                out.update(i for i, t in user_state.seen.items() if t >= cutoff)
            if request.exclude.bought and bought:
                out.update(user_state.bought)
            if request.exclude.disliked:
                out.update(user_state.disliked)
        return out

    def _rank(
        self,
        pool: dict[str, _Candidate],
        catalog: CatalogSnapshot,
        request: RecommendationRequest,
        bundle: ModelBundle | None,
        scope: RequestScope,
    ) -> list[_Candidate]:
        candidates = list(pool.values())
        ranker = bundle.ranker if bundle is not None else None
        if ranker is not None and candidates:
            scores = ranker.score(scope, [(c.item_id, c.scores) for c in candidates])
            for cand, s in zip(candidates, scores, strict=True):
                cand.final = float(s)
        # else: the pool kept each candidate's blend in ``final``
        self._damp_repeats(candidates, scope)
        boosts = active_boosts(request.rules.boosts, request.context)
        if boosts:
            for cand in candidates:
                item = catalog.get(cand.item_id)
                if item is not None:
                    cand.final = apply_boosts(item, cand.final, boosts)
        candidates.sort(key=lambda c: (-c.final, -c.tie, c.item_id))
        return candidates

    def _damp_repeats(self, candidates: list[_Candidate], scope: RequestScope) -> None:
        """Items shown to this person within the window without an interaction since sink:
        their score is multiplied by the penalty once per such impression."""
        policy = scope.request.repetition
        if policy.penalty >= 1 or policy.hours <= 0 or scope.subject is None or not candidates:
            return
        recent = scope.user_state.recent if scope.user_state is not None else []
        counts = self.shown.unclicked(scope.tenant, scope.subject,
                                      scope.now - timedelta(hours=policy.hours), recent)
        if not counts:
            return
        for cand in candidates:
            times = counts.get(cand.item_id)
            if times:
                factor = policy.penalty ** times
                cand.final = cand.final * factor if cand.final >= 0 else cand.final / factor
                cand.tie *= factor

    def _cold(self, scope: RequestScope, pool: dict[str, _Candidate], excluded: set[str],
              slots: int, *, asked: bool = False) -> list[_Candidate]:
        """The best cold items for the person's reserved places (the ``cold_content``
        source's, visible under the request's filters), best first; the pool's candidate
        when the blend already holds the item. ``asked``: the gathering asked the source and it
        contributed, so the pool holds its visible candidates (it is not asked twice)."""
        source = self.sources.get("cold_content")
        if source is None or not scope.personalized:
            return []
        if asked:
            found_in_pool = [c for c in pool.values() if "cold_content" in c.scores]
            return sorted(found_in_pool, key=lambda c: (-c.scores["cold_content"], c.item_id))
        request, catalog = scope.request, scope.catalog
        try:
            found = source.candidates(scope, max(slots * 5, 20))
        except Unavailable as exc:
            scope.warnings.append(f"source cold_content unavailable: {exc.message}")
            return []
        allowed = item_filter(request.filters, request.item_types, scope.now)
        restrict = set(request.filters.item_ids) if request.filters.item_ids is not None else None
        top = max((abs(s.score) for s in found), default=1.0) or 1.0
        out = []
        for scored in found:
            item = catalog.get(scored.item_id)
            if (item is None or scored.item_id in excluded or not allowed(item)
                    or (restrict is not None and scored.item_id not in restrict)):
                continue
            cand = pool.get(scored.item_id)
            if cand is None:
                share = scored.score / top
                cand = _Candidate(scored.item_id, {"cold_content": share}, [scored.reason],
                                  0.0, share, [share])
            out.append(cand)
        return out

    def _arrange(
        self,
        ranked: list[_Candidate],
        catalog: CatalogSnapshot,
        request: RecommendationRequest,
        excluded: set[str],
        now: datetime,
        *,
        cold: Sequence[_Candidate] = (),
        cold_slots: int = 0,
        known: Container[str] | None = None,
    ) -> list[_Candidate]:
        n = request.n
        rules = request.rules

        allowed = item_filter(request.filters, request.item_types, now)

        def usable(item_id: str) -> bool:
            item = catalog.get(item_id)
            return item is not None and item_id not in excluded and allowed(item)

        pinned = [
            _Candidate(i, {"pinned": 1.0}, [Reason("pinned", "rules", 10.0)], float("inf"))
            for i in dict.fromkeys(rules.pinned)
            if usable(i)
        ][:n]
        taken = {c.item_id for c in pinned}
        promoted_slots = round(rules.promoted_share * (n - len(pinned)))
        promoted = [
            _Candidate(i, {"promoted": 1.0}, [Reason("promoted", "rules", 5.0)], 0.0)
            for i in dict.fromkeys(rules.promoted)
            if i not in taken and usable(i)
        ][:promoted_slots]
        taken |= {c.item_id for c in promoted}
        rest = [c for c in ranked if c.item_id not in taken]

        def cats(c: _Candidate) -> list[str]:
            item = catalog.get(c.item_id)
            return item.categories if item is not None else []

        organic = diversify(
            rest,
            n - len(pinned) - len(promoted),
            score=lambda c: c.final,
            categories=cats,
            max_per_category=request.diversity.max_per_category,
            mmr_lambda=request.diversity.mmr_lambda,
        )
        if cold_slots and cold:
            organic = _reserve_cold(organic, cold, cold_slots, n - len(pinned) - len(promoted),
                                    taken, known)
        if promoted:
            # spread promoted items evenly through the organic list
            step = max(1, (len(organic) + len(promoted)) // len(promoted))
            for k, cand in enumerate(promoted):
                organic.insert(min(len(organic), k * step + step - 1), cand)
        return (pinned + organic)[:n]

    def _present(
        self, cand: _Candidate, catalog: CatalogSnapshot, request: RecommendationRequest
    ) -> RecommendedItem:
        source = max(cand.scores, key=lambda k: cand.scores[k]) if cand.scores else "unknown"
        weighted = cand.weighted_reasons()
        reasons, sentence = explain(weighted, request.language) if request.explain else ([], "")
        if not request.explain and weighted:
            source = max(weighted, key=lambda r: r.weight).source
        elif reasons:
            source = reasons[0]["source"]
        return RecommendedItem(
            cand.item_id,
            round(cand.final, 6),
            source,
            reasons,
            sentence,
            catalog.get(cand.item_id),
            dict(cand.scores),
        )

    def _log(
        self,
        tenant: str,
        request: RecommendationRequest,
        result: RecommendationResult,
        now: datetime,
    ) -> None:
        if self.log_impression is None or not result.items:
            return
        logged = result.items[:MAX_LIST_LENGTH]
        # every field comes from the validated request and the chain's own result: built
        # without re-validation (it is on every response's path)
        event = Event.model_construct(
            event_id=f"imp-{result.recommendation_id}",
            type="impression",
            user_id=request.user_id,
            anonymous_id=request.anonymous_id,
            item_ids=[i.item_id for i in logged],
            timestamp=now,
            context=request.context,
            recommendation_id=result.recommendation_id,
            properties={
                "sources": [i.source for i in logged],
                "explanations": [i.explanation[:500] for i in logged],
                "personalized": result.personalized,
                "model_version": result.model_version or "",
                **{
                    f"score_{name}": [round(i.scores.get(name, 0.0), 5) for i in logged]
                    for name in self.registry.features()
                },
            },
        )
        try:
            self.log_impression(tenant, event)
        except Exception:  # logging never fails a response
            log.exception("could not log impression %s", result.recommendation_id)


BOUGHT_TYPES = frozenset({"purchase"})
DISLIKED_TYPES = frozenset({"dislike", "not_interested"})


def state_from_history(subject: str, events: Sequence[Event]) -> UserState:
    """A read-only ``UserState`` from stored events (newest first): recent interactions and the
    seen / bought / disliked marks; no session (a stored history is not a live visit)."""
    recent: list[Interaction] = []
    seen: dict[str, datetime] = {}
    bought: dict[str, datetime] = {}
    disliked: dict[str, datetime] = {}
    for event in sorted(events, key=lambda e: e.timestamp, reverse=True):
        if event.item_id is None:
            continue
        recent.append(Interaction(event.item_id, event.type, event.timestamp))
        seen.setdefault(event.item_id, event.timestamp)
        if event.type in BOUGHT_TYPES:
            bought.setdefault(event.item_id, event.timestamp)
        if event.type in DISLIKED_TYPES:
            disliked.setdefault(event.item_id, event.timestamp)
    last = recent[0].timestamp if recent else None
    return UserState(subject, recent, [], seen, bought, disliked, last)


def _reserve_cold(organic: list[_Candidate], cold: Sequence[_Candidate], slots: int,
                  room: int, taken: set[str], known: Container[str] | None) -> list[_Candidate]:
    """``organic`` with at least ``slots`` cold items (as many as ``cold`` offers): the cold
    items it ranked already count (those of ``cold`` and any the model does not know), the
    missing ones replace the lowest-ranked others and are spread evenly through the list."""
    ids = {c.item_id for c in organic}
    cold_ids = {c.item_id for c in cold}
    present = sum(1 for c in organic
                  if c.item_id in cold_ids or (known is not None and c.item_id not in known))
    extra = [c for c in cold if c.item_id not in ids and c.item_id not in taken]
    extra = extra[:max(0, min(slots, room) - present)]
    if not extra:
        return organic
    over = len(organic) + len(extra) - room
    if over > 0:  # drop the lowest-ranked warm items to make room
        kept: list[_Candidate] = []
        for cand in reversed(organic):
            is_cold = cand.item_id in cold_ids or (known is not None and cand.item_id not in known)
            if over > 0 and not is_cold:
                over -= 1
                continue
            kept.append(cand)
        organic = kept[::-1]
    step = max(1, (len(organic) + len(extra)) // len(extra))
    for k, cand in enumerate(extra):
        organic.insert(min(len(organic), k * step + step - 1), cand)
    return organic
