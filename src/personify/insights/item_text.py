"""What a catalogue item's own text says: the title and description analysed like people's
texts (language, sentiment, emotions and keywords of :mod:`personify.insights.text`) and its
topics in the tenant's own categories (:class:`personify.insights.topics.TopicModel`, learnt from
the tenant's items that have categories: an uncategorised item gets topics from the labelled ones;
a labelled item's own text is among the examples, so its topics lean to its categories).

One :class:`ItemTexts` per process caches each item's analysis by the text it was made from (an
edited title is analysed again) and each tenant's topic model by the catalogue's size and age
(refitted when items were added or removed, seen at most every :data:`CHECK_EVERY`, or after
:data:`TOPICS_MAX_AGE`).
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from personify.domain.items import Item
from personify.insights.profile import Reason
from personify.insights.text import EMOTIONS, SENTIMENTS, TextAnalyzer, keywords
from personify.insights.topics import TopicModel
from personify.storage.ports import CatalogStore

CACHE_SIZE = 50_000
"""Item analyses one process keeps (least recently used dropped first)."""
TOPIC_ITEMS = 20_000
"""Labelled items a tenant's topic model learns from (the first by id beyond this)."""
TOPICS_MAX_AGE = timedelta(hours=6)
CHECK_EVERY = timedelta(minutes=1)
"""How often the catalogue's size is compared with the topic model's."""
TOPICS = 3
KEYWORDS = 8


class ItemTopic(BaseModel):
    label: str = Field(description="one of the tenant's item categories")
    score: float


class ItemTextInsights(BaseModel):
    item_id: str
    status: str = Field(description="ok, or no_text when the item has no title or description")
    language: str | None = Field(default=None, description="ru, en, other or null")
    sentiment: str | None = Field(default=None, description="negative, neutral or positive")
    sentiment_scores: dict[str, float] = Field(default_factory=dict)
    emotion: str | None = Field(default=None, description="the strongest emotion above its "
                                                          "threshold (neutral when none is)")
    emotions: dict[str, float] = Field(default_factory=dict)
    keywords: list[str] = Field(default_factory=list)
    topics: list[ItemTopic] = Field(
        default_factory=list, description="the best of the tenant's categories for the text "
                                          "(empty when no item has a category)")
    reason: Reason


def item_text(item: Item) -> str:
    """The text of an item that is analysed: its title and description."""
    return ". ".join(part.strip() for part in (item.title, item.description) if part.strip())


def _reason(result: ItemTextInsights) -> Reason:
    if result.status != "ok":
        return Reason(en="The item has no title or description to analyse.",
                      ru="У товара нет названия или описания для анализа.")
    about = ", ".join(t.label for t in result.topics) or "-"
    words = ", ".join(result.keywords[:5]) or "-"
    return Reason(
        en=f"Its text ({result.language or 'no language'}) reads {result.sentiment or 'neutral'}"
           f", emotion {result.emotion or 'neutral'}; about: {about}; keywords: {words}.",
        ru=f"Текст ({result.language or 'язык не определён'}): тональность "
           f"{result.sentiment or 'neutral'}, эмоция {result.emotion or 'neutral'}; темы: "
           f"{about}; ключевые слова: {words}.",
    )


class ItemTexts:
    """Item text insights of every tenant, cached (see the module doc)."""

    def __init__(self, catalog: CatalogStore, analyzer: TextAnalyzer,
                 clock: Callable[[], datetime]) -> None:
        self.catalog = catalog
        self.analyzer = analyzer
        self.clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[int, ItemTextInsights]] = OrderedDict()
        self._topics: dict[str, tuple[int, datetime, TopicModel | None]] = {}
        self._checked: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def topic_model(self, tenant: str) -> TopicModel | None:
        """The tenant's topic model (None while no item has a category)."""
        now = self.clock()
        with self._lock:
            kept = self._topics.get(tenant)
            checked = self._checked.get(tenant)
        if kept is not None and checked is not None and timedelta(0) <= now - checked < CHECK_EVERY:
            return kept[2]
        count = self.catalog.count(tenant)
        with self._lock:
            self._checked[tenant] = now
        if kept is not None and kept[0] == count and now - kept[1] < TOPICS_MAX_AGE:
            return kept[2]
        texts: list[str] = []
        labels: list[list[str]] = []
        for item in self.catalog.scan(tenant):
            text = item_text(item)
            if item.categories and text:
                texts.append(text)
                labels.append(list(item.categories))
                if len(texts) >= TOPIC_ITEMS:
                    break
        model = TopicModel.fit(texts, labels) if texts else None
        with self._lock:
            self._topics[tenant] = (count, now, model)
            stale = [k for k in self._cache if k[0] == tenant]
            for key in stale:  # topics of cached analyses came from the previous model
                del self._cache[key]
        return model

    def of(self, tenant: str, item: Item) -> ItemTextInsights:
        text = item_text(item)
        digest = zlib.crc32(text.encode())
        key = (tenant, item.item_id)
        model = self.topic_model(tenant)
        with self._lock:
            kept = self._cache.get(key)
            if kept is not None and kept[0] == digest:
                self._cache.move_to_end(key)
                return kept[1]
        result = self._analyse(item.item_id, text, model)
        with self._lock:
            self._cache[key] = (digest, result)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return result

    def many(self, tenant: str, items: Iterable[Item]) -> dict[str, ItemTextInsights]:
        return {item.item_id: self.of(tenant, item) for item in items}

    def facts(self, tenant: str, items: Sequence[Item]) -> dict[str, set[str]]:
        """The segment fields of the texts of ``items`` (a person's recent items)."""
        topics: set[str] = set()
        words: set[str] = set()
        emotions: set[str] = set()
        for item in items:
            found = self.of(tenant, item)
            topics.update(t.label for t in found.topics[:1])
            words.update(found.keywords[:3])
            if found.emotion and found.emotion != "neutral":
                emotions.add(found.emotion)
        return {"item_topics": topics, "item_keywords": words, "item_emotions": emotions}

    def forget(self, tenant: str, item_ids: Sequence[str]) -> None:
        with self._lock:
            for item_id in item_ids:
                self._cache.pop((tenant, item_id), None)

    def _analyse(self, item_id: str, text: str, model: TopicModel | None) -> ItemTextInsights:
        if not text:
            result = ItemTextInsights(item_id=item_id, status="no_text",
                                      reason=Reason(en="", ru=""))
            return result.model_copy(update={"reason": _reason(result)})
        analysis = self.analyzer.analyse(text)
        _, models, keyword_model = self.analyzer.models()
        result = ItemTextInsights(item_id=item_id, status="ok", language=analysis.language,
                                  reason=Reason(en="", ru=""))
        if analysis.scores is not None and analysis.language in models:
            scores = analysis.scores
            chosen = models[analysis.language].predict_emotions(analysis.cleaned, cleaned=True)
            result.emotions = scores.emotions
            result.emotion = max(chosen, key=lambda e: scores.emotions[e])
            result.sentiment_scores = scores.sentiment
            result.sentiment = max(SENTIMENTS, key=lambda s: scores.sentiment[s])
            result.keywords = [k.keyword for k in keywords(
                [(analysis.language, analysis.cleaned)], keyword_model, n=KEYWORDS)]
        if model is not None:
            result.topics = [ItemTopic(label=t.label, score=t.score)
                             for t in model.predict(text, n=TOPICS)]
        assert set(result.emotions) <= set(EMOTIONS)
        return result.model_copy(update={"reason": _reason(result)})
