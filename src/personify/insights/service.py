"""Insights of one person on request: their own events, the catalogue items they touched and the
tenant's population artefact make the profile; batch scores add churn and propensity. Profiles
are cached per person and dropped when the person's events arrive (the ingestion listener) or
when they are erased."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from personify.domain.events import Event
from personify.domain.items import Item
from personify.domain.users import User
from personify.insights.history import PurchaseHistory
from personify.insights.item_text import ItemTextInsights, ItemTexts
from personify.insights.live import LiveFacts
from personify.insights.population import PersonScores, Population, PopulationFiles
from personify.insights.profile import (
    BehaviourProfile,
    Predictions,
    Reason,
    Score,
    behaviour_profile,
    customer_base,
)
from personify.insights.segments import SegmentTracker, recent_facts, user_facts
from personify.insights.text import TextAnalyzer, default_analyzer
from personify.insights.text_profile import (
    ProfileText,
    TextInsights,
    profile_text_insights,
    text_facts,
    text_insights,
)
from personify.storage.ports import CatalogStore, EventStore, UserStore

MAX_EVENTS = 5_000
CACHE_SIZE = 10_000
MAX_SYNC_REFRESH = 50
"""People of one ingested batch without live facts in this process (a first full computation)
whose segments are re-evaluated before the ingest returns; people with live facts always are."""
REFRESH_CHUNK = 200
"""People whose events one query of a full re-evaluation reads."""
LIVE_SIZE = 200_000
"""People whose live segment facts one process keeps (least recently updated dropped first)."""
NOT_ALLOWED = Reason(
    en="Profiling is not allowed for this person (no profiling consent, restricted or erased): "
       "nothing is computed about them.",
    ru="Профилирование этого человека не разрешено (нет согласия, ограничено или удалено): "
       "о нём ничего не вычисляется.",
)


class SegmentMembership(BaseModel):
    segment_id: str
    name: str
    since: datetime | None = None
    reason: Reason


class ClusterMembership(BaseModel):
    cluster_id: str
    share: float = Field(description="share of the tenant's people in this cluster")
    reason: Reason = Field(description="what distinguishes the cluster from everyone")


class Insights(BaseModel):
    user_id: str
    computed_at: datetime
    status: str = Field(description="ok, or not_allowed when profiling is not permitted")
    reason: Reason | None = None
    profile: BehaviourProfile | None = None
    predictions: Predictions | None = None
    text: TextInsights | None = Field(
        default=None, description="what the person's own texts say (absent when they wrote none)")
    segments: list[SegmentMembership] = Field(default_factory=list)
    profile_text: ProfileText | None = Field(
        default=None, description="language and keywords of the person's profile.bio")
    cluster: ClusterMembership | None = Field(
        default=None, description="the automatic cluster (personify insights fit --clusters)")
    population_fitted_at: datetime | None = None


def _score(probability: float, reasons: list[dict[str, Any]], what_en: str, what_ru: str,
           ) -> Score:
    named_en = "; ".join(str(r.get("en", r.get("feature"))) for r in reasons[:3])
    named_ru = "; ".join(str(r.get("ru", r.get("feature"))) for r in reasons[:3])
    return Score(
        probability=round(probability, 4), top_reasons=reasons,
        reason=Reason(
            en=f"{probability:.0%} {what_en} (LightGBM, calibrated). Main reasons: {named_en}.",
            ru=f"{probability:.0%}: {what_ru} (LightGBM, откалибровано). Главные причины: "
               f"{named_ru}.",
        ),
    )


def scored_predictions(
    history: PurchaseHistory, population: Population | None, scores: PersonScores | None,
    now: datetime,
) -> Predictions:
    predictions = Predictions(customer_base=customer_base(history, population, now))
    if scores is not None:
        predictions.churn_90d = _score(
            scores.churn, scores.churn_reasons, "chance of no purchase in the next 90 days",
            "вероятность, что покупок не будет в ближайшие 90 дней")
        predictions.purchase_30d = _score(
            scores.propensity, scores.propensity_reasons,
            "chance of a purchase in the next 30 days",
            "вероятность покупки в ближайшие 30 дней")
    elif population is not None and population.scores_model:
        predictions.note = Reason(
            en="Not enough history for churn / propensity: the person had no purchase before the "
               "last training cut.",
            ru="Недостаточно истории для прогноза оттока и покупки: до последнего обучения "
               "покупок не было.")
    else:
        predictions.note = Reason(
            en="Churn and propensity models are not trained yet (personify insights fit "
               "--predictions, needs the train extra).",
            ru="Модели оттока и покупки ещё не обучены (personify insights fit --predictions, "
               "нужен extra train).")
    return predictions


class InsightsService:
    def __init__(
        self,
        *,
        events: EventStore,
        users: UserStore,
        catalog: CatalogStore,
        populations: PopulationFiles,
        may_profile: Callable[[str, str], bool],
        tracker: SegmentTracker | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        text_analyzer: TextAnalyzer | None = None,
    ) -> None:
        self.text_analyzer = text_analyzer or default_analyzer()
        self.item_texts = ItemTexts(catalog, self.text_analyzer, clock)
        self.events = events
        self.users = users
        self.catalog = catalog
        self.populations = populations
        self.may_profile = may_profile
        self.tracker = tracker
        self.clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[Insights, dict[str, Any]]] = OrderedDict()
        self._live: OrderedDict[tuple[str, str], LiveFacts] = OrderedDict()
        self._lock = threading.Lock()

    def person_events(self, tenant: str, user_id: str) -> list[Event]:
        return self.events.for_user(tenant, user_id, limit=MAX_EVENTS)

    def insights(self, tenant: str, user_id: str) -> Insights:
        now = self.clock()
        if not self.may_profile(tenant, user_id):
            with self._lock:
                self._cache.pop((tenant, user_id), None)
                self._live.pop((tenant, user_id), None)
            if self.tracker is not None:
                self.tracker.update(tenant, user_id, None)
            return Insights(user_id=user_id, computed_at=now, status="not_allowed",
                            reason=NOT_ALLOWED)
        insights, facts = self._current(tenant, user_id, now)
        if self.tracker is None:
            return insights
        return insights.model_copy(update={"segments": self._memberships(tenant, user_id, facts)})

    def _current(self, tenant: str, user_id: str, now: datetime,
                 ) -> tuple[Insights, dict[str, Any]]:
        key = (tenant, user_id)
        population = self.populations.load(tenant)
        with self._lock:
            cached = self._cache.get(key)
        if cached is None or cached[0].population_fitted_at != (
            population.fitted_at if population else None
        ) or (now - cached[0].computed_at).total_seconds() > 3600:
            cached = self._compute(tenant, user_id, population, now)
            self._store(tenant, user_id, cached)
        return cached

    def _memberships(self, tenant: str, user_id: str, facts: dict[str, Any],
                     ) -> list[SegmentMembership]:
        assert self.tracker is not None
        since = self.tracker.update(tenant, user_id, facts)
        segments = self.tracker.files.all(tenant)
        return [
            SegmentMembership(
                segment_id=sid, name=segments[sid].name, since=at,
                reason=Reason(en=f"Matches the rule: {segments[sid].text}",
                              ru=f"Соответствует правилу: {segments[sid].text}"),
            )
            for sid, at in sorted(since.items()) if sid in segments
        ]

    def segment_members(self, tenant: str, segment_id: str) -> Callable[[str], bool]:
        """A membership test for one segment, evaluating each person now (campaign audiences);
        NotFound for an unknown segment."""
        from personify.domain.errors import NotFound

        if self.tracker is None or segment_id not in self.tracker.files.all(tenant):
            raise NotFound(f"no segment {segment_id!r}", field="segment",
                           accepted="the id of an existing segment (GET /v1/segments)")
        return lambda user_id: segment_id in self.refresh(tenant, user_id)

    def segments_of(self, tenant: str, user_id: str | None, wanted: Sequence[str], *,
                    strict: bool = True) -> frozenset[str]:
        """Which of ``wanted`` the person is in now: their memberships as kept current by
        ingestion, evaluated first when this process has not evaluated them yet; none for an
        anonymous visitor (``None``) or without profiling permission. ``strict``: an unknown
        segment id is NotFound (else it is simply not matched)."""
        from personify.domain.errors import NotFound

        defined = self.tracker.files.all(tenant) if self.tracker is not None else {}
        unknown = [s for s in wanted if s not in defined]
        if unknown and strict:
            raise NotFound(f"no segment {unknown[0]!r}", field="segments",
                           accepted="ids of existing segments (GET /v1/segments): "
                                    + (", ".join(sorted(defined)) or "none defined"))
        if user_id is None or self.tracker is None or len(unknown) == len(wanted):
            return frozenset()
        known = self.tracker.memberships(tenant, user_id)
        if known is None:
            known = set(self.refresh(tenant, user_id))
        return frozenset(known.intersection(wanted))

    def refresh(self, tenant: str, user_id: str) -> list[str]:
        """Re-evaluate one person's segments now (entry / exit listeners fire); their ids."""
        return [m.segment_id for m in self.insights(tenant, user_id).segments]

    def refresh_many(self, tenant: str, users: Iterable[User], *,
                     chunk: int = REFRESH_CHUNK) -> int:
        """Re-evaluate the segments of many people now (``POST /v1/segments/refresh``, the
        CLI): what :meth:`refresh` does for each, in batches. A person whose live facts are
        current (same population, evaluated by this process since) is re-evaluated from them
        at ``now`` without reading their events (incremental: their declared profile is read
        again, time-dependent facts are re-derived); the others are computed in chunks: one
        events query per chunk (``recent_for_users``), the catalogue items read once per run.
        Returns the number of people evaluated."""
        if self.tracker is None or not self.tracker.files.all(tenant):
            return sum(1 for _ in users)
        population = self.populations.load(tenant)
        fitted = population.fitted_at if population is not None else None
        seen: dict[str, Item] = {}
        people = 0
        pending: list[User] = []
        for user in users:
            people += 1
            with self._lock:
                live = self._live.get((tenant, user.user_id))
            if live is not None and live.population_fitted_at == fitted:
                self._refresh_live(tenant, user, live, population)
            else:
                pending.append(user)
            if len(pending) >= chunk:
                self._refresh_chunk(tenant, pending, population, seen)
                pending = []
        if pending:
            self._refresh_chunk(tenant, pending, population, seen)
        return people

    def _refresh_live(self, tenant: str, user: User, live: LiveFacts,
                      population: Population | None) -> None:
        assert self.tracker is not None
        if not self.may_profile(tenant, user.user_id):
            self.insights(tenant, user.user_id)  # drops what is kept, leaves every segment
            return
        declared = user_facts(user)
        declared["profile.keywords"] = live.user_facts.get("profile.keywords", set())
        if user.profile.bio != live.bio:
            text = profile_text_insights(user.profile.bio, self.text_analyzer)
            declared["profile.keywords"] = set(text.keywords if text else ())
            live.bio = user.profile.bio
        now = self.clock()
        with self._lock:
            live.user_facts = declared
            facts = live.facts(population, now)
        self.tracker.update(tenant, user.user_id, facts)

    def _refresh_chunk(self, tenant: str, users: Sequence[User], population: Population | None,
                       seen: dict[str, Item]) -> None:
        allowed = []
        for user in users:
            if self.may_profile(tenant, user.user_id):
                allowed.append(user)
            else:
                self.insights(tenant, user.user_id)  # not_allowed: drops what is kept
        if not allowed:
            return
        found = self.events.recent_for_users(tenant, [u.user_id for u in allowed],
                                             limit_per_user=MAX_EVENTS)
        wanted = list(dict.fromkeys(e.item_id for evs in found.values() for e in evs
                                    if e.item_id and e.item_id not in seen))
        for start in range(0, len(wanted), 1000):
            seen.update(self.catalog.get_many(tenant, wanted[start:start + 1000]))
        now = self.clock()
        for user in allowed:
            events = [e for e in found.get(user.user_id, []) if e.type != "impression"]
            items = {e.item_id: seen[e.item_id] for e in events
                     if e.item_id and e.item_id in seen}
            computed = self._compute_from(tenant, user.user_id, user, events, items,
                                          population, now)
            self._store(tenant, user.user_id, computed)
            self._memberships(tenant, user.user_id, computed[1])

    def _store(self, tenant: str, user_id: str, computed: tuple[Insights, dict[str, Any]],
               ) -> None:
        key = (tenant, user_id)
        with self._lock:
            self._cache[key] = computed
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)

    def _compute(
        self, tenant: str, user_id: str, population: Population | None, now: datetime
    ) -> tuple[Insights, dict[str, Any]]:
        user: User | None = self.users.get(tenant, user_id)
        events = [e for e in self.person_events(tenant, user_id) if e.type != "impression"]
        item_ids = list(dict.fromkeys(e.item_id for e in events if e.item_id))
        items: dict[str, Item] = self.catalog.get_many(tenant, item_ids) if item_ids else {}
        return self._compute_from(tenant, user_id, user, events, items, population, now)

    def _compute_from(
        self, tenant: str, user_id: str, user: User | None, events: list[Event],
        items: Mapping[str, Item], population: Population | None, now: datetime,
    ) -> tuple[Insights, dict[str, Any]]:
        profile = behaviour_profile(events, items, user, population, now)
        history = PurchaseHistory.of(e for e in events if e.timestamp <= now)
        scores = population.scores.get(user_id) if population is not None else None
        memo: dict[str, Any] = {}
        insights = Insights(
            user_id=user_id, computed_at=now, status="ok", profile=profile,
            predictions=scored_predictions(history, population, scores, now),
            text=text_insights(events, self.text_analyzer, now, memo=memo),
            cluster=cluster_of(population, user_id),
            profile_text=profile_text_insights(user.profile.bio if user else None,
                                               self.text_analyzer),
            population_fitted_at=population.fitted_at if population else None,
        )
        own_facts, texts, declared = facts_of(insights), text_facts(insights.text), user_facts(user)
        own_facts.update(self.item_texts.facts(tenant, recent_items(events, items)))
        declared["profile.keywords"] = set(insights.profile_text.keywords
                                           if insights.profile_text else ())
        facts = {**own_facts, **texts, **recent_facts(events, items, now), **declared}
        if self.tracker is not None:
            live = LiveFacts.of(events, items, now, population, own_facts, declared, texts)
            live.text_memo = memo
            live.bio = user.profile.bio if user else None
            with self._lock:
                self._live[(tenant, user_id)] = live
                self._live.move_to_end((tenant, user_id))
                while len(self._live) > LIVE_SIZE:
                    self._live.popitem(last=False)
        return insights, facts

    def item_insights(self, tenant: str, item_id: str) -> ItemTextInsights:
        """What the item's title and description say (NotFound for an unknown item)."""
        from personify.domain.errors import NotFound

        item = self.catalog.get(tenant, item_id)
        if item is None:
            raise NotFound(f"no item {item_id!r}", field="item_id",
                           accepted="the id of an item in the catalogue")
        return self.item_texts.of(tenant, item)

    # ingestion listener: the person's next read recomputes
    def on_events(self, tenant: str, events: Sequence[Event]) -> None:
        """Drop the people's cached insights; with segments defined, bring their memberships up
        to date now: people with live facts by adding the events to them (no recomputation),
        the others by a full computation (at most ``MAX_SYNC_REFRESH`` of them per batch)."""
        by_subject: dict[str, list[Event]] = {}
        for event in events:
            if event.user_id:
                by_subject.setdefault(event.user_id, []).append(event)
        if not by_subject:
            return
        subjects = sorted(by_subject)
        with self._lock:
            for subject in subjects:
                self._cache.pop((tenant, subject), None)
        if self.tracker is None or not self.tracker.files.all(tenant):
            return
        population = self.populations.load(tenant)
        fitted = population.fitted_at if population is not None else None
        cold: list[str] = []
        for subject in subjects:
            with self._lock:
                live = self._live.get((tenant, subject))
            if live is None or live.population_fitted_at != fitted:
                cold.append(subject)
            elif not self.may_profile(tenant, subject):
                with self._lock:
                    self._live.pop((tenant, subject), None)
                self.tracker.update(tenant, subject, None)
            else:
                self._apply_live(tenant, subject, live, by_subject[subject], population)
        # bounded work on the ingestion path: a bulk batch of unknown people beyond this leaves
        # the rest to their next read or POST /v1/segments/refresh
        for subject in cold[:MAX_SYNC_REFRESH]:
            self.refresh(tenant, subject)

    def _apply_live(self, tenant: str, user_id: str, live: LiveFacts, events: list[Event],
                    population: Population | None) -> None:
        assert self.tracker is not None
        now = self.clock()
        ids = list(dict.fromkeys(e.item_id for e in events if e.item_id))
        items = self.catalog.get_many(tenant, ids) if ids else {}
        with self._lock:
            live.add(events, items, now, self.text_analyzer)
            self._live.move_to_end((tenant, user_id))
            facts = live.facts(population, now)
        self.tracker.update(tenant, user_id, facts)

    def forget(self, tenant: str, subjects: Sequence[str]) -> int:
        """Erasure: drop cached insights and batch scores of the subjects."""
        removed = 0
        with self._lock:
            for subject in subjects:
                removed += self._cache.pop((tenant, subject), None) is not None
                self._live.pop((tenant, subject), None)
        if self.tracker is not None:
            removed += self.tracker.forget(tenant, subjects)
        return removed + self.populations.forget(tenant, subjects)

    def template_variables(self, tenant: str, user_id: str) -> dict[str, Any]:
        """``person.insights`` of message templates (the names of
        ``personify.messaging.templates.INSIGHT_VARIABLES``); ``status: not_allowed`` with
        nothing else without profiling permission."""
        return template_variables(self.insights(tenant, user_id))

    def complaint_hold(self, tenant: str, user_id: str, days: int) -> str | None:
        """Why marketing is held back: the person's newest text was negative within ``days``
        (None when it was not, or nothing is known about them)."""
        if days <= 0:
            return None
        insights = self.insights(tenant, user_id)
        sentiment = insights.text.sentiment if insights.text is not None else None
        if sentiment is None or sentiment.last != "negative" or sentiment.last_at is None:
            return None
        until = sentiment.last_at + timedelta(days=days)
        if until <= self.clock():
            return None
        return (f"held back after a complaint: negative feedback on "
                f"{sentiment.last_at:%Y-%m-%d}, until {until:%Y-%m-%d %H:%M} UTC")

    def export(self, tenant: str, user_id: str) -> dict[str, Any]:
        """What the privacy export includes: the insights as served."""
        return self.insights(tenant, user_id).model_dump(mode="json")


ITEM_TEXT_EVENTS = frozenset({"purchase", "add_to_cart", "view", "like", "click"})
RECENT_ITEMS = 50


def recent_items(events: Sequence[Event], items: Mapping[str, Item]) -> list[Item]:
    """The items a person bought, carted, liked, clicked or viewed most recently (newest first,
    at most :data:`RECENT_ITEMS`): whose texts give ``item_topics`` and the like."""
    seen: dict[str, Item] = {}
    for event in sorted(events, key=lambda e: e.timestamp, reverse=True):
        if event.type in ITEM_TEXT_EVENTS and event.item_id and event.item_id not in seen:
            item = items.get(event.item_id)
            if item is not None:
                seen[event.item_id] = item
                if len(seen) >= RECENT_ITEMS:
                    break
    return list(seen.values())


def cluster_of(population: Population | None, user_id: str) -> ClusterMembership | None:
    clusters = population.clusters if population is not None else {}
    cid = clusters.get("members", {}).get(user_id)
    found = next((c for c in clusters.get("clusters", []) if c["id"] == cid), None)
    if found is None:
        return None
    text = found["description"]
    return ClusterMembership(
        cluster_id=cid, share=found["share"],
        reason=Reason(en=f"Cluster {cid} ({found['share']:.0%} of people): {text['en']}.",
                      ru=f"Кластер {cid} ({found['share']:.0%} людей): {text['ru']}."))


def facts_of(insights: Insights) -> dict[str, Any]:
    """The rule fields computed from a person's insights."""
    p, pr = insights.profile, insights.predictions
    if p is None or pr is None:
        return {}
    base = pr.customer_base
    return {
        "lifecycle": p.lifecycle.stage, "rfm.tier": p.rfm.tier, "rfm.r": p.rfm.r,
        "rfm.f": p.rfm.f, "rfm.m": p.rfm.m, "recency_days": p.rfm.recency_days,
        "frequency": p.rfm.frequency, "monetary": p.rfm.monetary,
        "price.label": p.price_sensitivity.label,
        "price.discount_share": p.price_sensitivity.discount_share,
        "p_alive": base.probability_alive, "clv_90d": base.clv_90d,
        "expected_purchases_90d": base.expected_purchases_90d,
        "churn_risk": pr.churn_90d.probability if pr.churn_90d else None,
        "purchase_propensity": pr.purchase_30d.probability if pr.purchase_30d else None,
        "top_categories": {a.key for a in p.affinities.categories[:5]},
        "channel": p.rhythm.preferred_channel, "device": p.rhythm.preferred_device,
        "cluster": insights.cluster.cluster_id if insights.cluster else None,
    }


def template_variables(insights: Insights) -> dict[str, Any]:
    """The template variables of one person's insights (None / empty where unknown)."""
    out: dict[str, Any] = {
        "status": insights.status, "top_interest": None, "top_interests": [], "top_brand": None,
        "lifecycle": None, "rfm_tier": None, "price_label": None, "churn_risk": None,
        "purchase_propensity": None, "clv_90d": None, "p_alive": None,
        "preferred_channel": None, "sentiment_last": None, "recent_negative_share": None,
        "dominant_emotion": None, "keywords": [],
        "segments": [m.segment_id for m in insights.segments],
        "cluster": insights.cluster.cluster_id if insights.cluster else None,
    }
    p, pr, text = insights.profile, insights.predictions, insights.text
    if p is not None:
        categories = [a.key for a in p.affinities.categories]
        out.update(
            top_interest=categories[0] if categories else None, top_interests=categories[:3],
            top_brand=p.affinities.brands[0].key if p.affinities.brands else None,
            lifecycle=p.lifecycle.stage, rfm_tier=p.rfm.tier,
            price_label=p.price_sensitivity.label, preferred_channel=p.rhythm.preferred_channel,
        )
    if pr is not None:
        base = pr.customer_base
        out.update(
            churn_risk=pr.churn_90d.probability if pr.churn_90d else None,
            purchase_propensity=pr.purchase_30d.probability if pr.purchase_30d else None,
            clv_90d=base.clv_90d, p_alive=base.probability_alive,
        )
    if text is not None:
        out.update(
            sentiment_last=text.sentiment.last if text.sentiment else None,
            recent_negative_share=text.sentiment.recent_negative_share if text.sentiment
            else None,
            dominant_emotion=text.dominant_emotion,
            keywords=[k.keyword for k in text.keywords[:5]],
        )
    return out
