"""A person's segment facts kept current on ingest without recomputing the profile.

The full profile (:func:`personify.insights.profile.behaviour_profile`) reads up to 5,000 of the
person's events; a heavy customer takes long enough that re-running it for every ingested event
would hold up ingestion. After one full computation the service keeps a :class:`LiveFacts` per
person: their purchase history reduced to days (:class:`PurchaseHistory`), their events of the
last 30 days (type, time, categories), the per-text analyses of their newest texts, and the facts
that only the full profile computes (affinities, channel, device, price sensitivity, batch scores,
declared profile). An ingested event is *added* to it; the facts that depend on it are derived by
the same functions the full profile uses (RFM, lifecycle, BG/NBD + Gamma-Gamma, the recent-event
windows, the text summary), so a person's facts after an event are what a full recomputation would
give, apart from the facts named above, which are refreshed on the person's next full computation
(their next insights read, or ``POST /v1/segments/refresh``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from personify.domain.events import Event
from personify.domain.items import Item
from personify.insights.history import PURCHASE, PurchaseHistory
from personify.insights.population import Population
from personify.insights.profile import customer_base, lifecycle, rfm
from personify.insights.text import TextAnalyzer
from personify.insights.text_profile import MAX_TEXTS, text_facts, text_insights

WINDOW_DAYS = 30
MAX_RECENT = 2_000
"""Recent events kept per person (the newest win)."""

STATIC_FIELDS = (
    "top_categories", "channel", "device", "price.label", "price.discount_share",
    "churn_risk", "purchase_propensity", "cluster", "item_topics", "item_keywords",
    "item_emotions",
)
"""Facts taken from the last full computation (not changed by one event)."""


@dataclass
class Recent:
    at: datetime
    type: str
    categories: tuple[str, ...]


@dataclass
class LiveFacts:
    """One person's incrementally maintained segment facts (see the module doc)."""

    population_fitted_at: datetime | None
    history: PurchaseHistory
    recent: list[Recent]
    static: dict[str, Any]
    user_facts: dict[str, Any]
    texts: list[Event] = field(default_factory=list)
    text_memo: dict[str, Any] = field(default_factory=dict)
    text_part: dict[str, Any] = field(default_factory=dict)
    bio: str | None = None
    """The profile.bio the declared keywords were taken from."""

    @classmethod
    def of(cls, events: Iterable[Event], items: Mapping[str, Item], now: datetime,
           population: Population | None, static: Mapping[str, Any],
           user_facts: Mapping[str, Any], text_part: Mapping[str, Any]) -> LiveFacts:
        """Built from the events a full computation read (impressions already left out)."""
        own = [e for e in events if e.timestamp <= now]
        state = cls(
            population_fitted_at=population.fitted_at if population else None,
            history=PurchaseHistory.of(own), recent=[],
            static={k: static.get(k) for k in STATIC_FIELDS}, user_facts=dict(user_facts),
            texts=sorted((e for e in own if e.text and e.text.strip()),
                         key=lambda e: e.timestamp, reverse=True)[:MAX_TEXTS],
            text_part=dict(text_part),
        )
        state._add_recent(own, items, now)
        return state

    def _add_recent(self, events: Iterable[Event], items: Mapping[str, Item],
                    now: datetime) -> None:
        since = now - timedelta(days=WINDOW_DAYS)
        for event in events:
            if event.type not in (PURCHASE, "view") or not since <= event.timestamp <= now:
                continue
            item = items.get(event.item_id) if event.item_id else None
            self.recent.append(Recent(event.timestamp, event.type,
                                      tuple(item.categories) if item is not None else ()))
        if len(self.recent) > MAX_RECENT:
            self.recent.sort(key=lambda r: r.at)
            del self.recent[:-MAX_RECENT]

    def add(self, events: Iterable[Event], items: Mapping[str, Item], now: datetime,
            analyzer: TextAnalyzer) -> None:
        """Take in newly ingested events of this person (events after ``now`` wait for the next
        full computation, as they would there)."""
        own = [e for e in events if e.timestamp <= now and e.type != "impression"]
        for event in own:
            self.history.add(event)
        self._add_recent(own, items, now)
        written = [e for e in own if e.text and e.text.strip()]
        if written:
            self.texts = sorted([*self.texts, *written], key=lambda e: e.timestamp,
                                reverse=True)[:MAX_TEXTS]
            self.text_part = text_facts(
                text_insights(self.texts, analyzer, now, memo=self.text_memo))

    def facts(self, population: Population | None, now: datetime) -> dict[str, Any]:
        """The person's rule fields at ``now``."""
        week, month = now - timedelta(days=7), now - timedelta(days=WINDOW_DAYS)
        viewed: set[str] = set()
        bought: set[str] = set()
        purchases_7d = purchases_30d = views_7d = 0
        self.recent = [r for r in self.recent if r.at >= month]
        for r in self.recent:
            if r.at > now:
                continue
            if r.type == PURCHASE:
                purchases_30d += 1
                bought.update(r.categories)
                if r.at >= week:
                    purchases_7d += 1
            elif r.at >= week:
                views_7d += 1
                viewed.update(r.categories)
        r_ = rfm(self.history, population, now)
        base = customer_base(self.history, population, now)
        return {
            **self.static,
            "lifecycle": lifecycle(self.history, population, now).stage,
            "rfm.tier": r_.tier, "rfm.r": r_.r, "rfm.f": r_.f, "rfm.m": r_.m,
            "recency_days": r_.recency_days, "frequency": r_.frequency, "monetary": r_.monetary,
            "p_alive": base.probability_alive, "clv_90d": base.clv_90d,
            "expected_purchases_90d": base.expected_purchases_90d,
            **self.text_part,
            "purchases_7d": purchases_7d, "purchases_30d": purchases_30d, "views_7d": views_7d,
            "viewed_categories_7d": viewed, "bought_categories_30d": bought,
            **self.user_facts,
        }
