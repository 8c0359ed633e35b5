"""What a person's own writing says about them: the texts of their events (reviews, comments,
messages, replies) read for language, sentiment, emotions and keywords, with a plain-language
reason in English and Russian. Computed with the person's profile, erased with it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from personify.domain.events import Event
from personify.insights.profile import Reason
from personify.insights.text import EMOTIONS, SENTIMENTS, TextAnalyzer, keywords

MAX_TEXTS = 200
"""The newest texts of a person that are analysed."""
RECENT_DAYS = 30
ATTRIBUTION = (
    "Emotion and sentiment models trained on CEDR (Sboev, Naumov, Rybka 2021, Apache-2.0), "
    "GoEmotions (Demszky et al. 2020, (c) Google, Apache-2.0) and ru-goemotions "
    "((c) 2023 SL, MIT)."
)
EMOTIONS_RU = {"joy": "радость", "sadness": "грусть", "surprise": "удивление", "fear": "страх",
               "anger": "гнев", "neutral": "нейтрально"}
SENTIMENTS_RU = {"negative": "негативная", "neutral": "нейтральная", "positive": "позитивная"}


class Share(BaseModel):
    key: str
    share: float = Field(description="share of the analysed texts, 0-1")
    texts: int


class SentimentSummary(BaseModel):
    negative_share: float
    neutral_share: float
    positive_share: float
    last: str | None = Field(default=None, description="sentiment of the newest text")
    last_at: datetime | None = None
    recent_negative_share: float | None = Field(
        default=None, description=f"negative share of the texts of the last {RECENT_DAYS} days")


class KeywordOut(BaseModel):
    keyword: str
    language: str
    score: float
    count: int
    event_ids: list[str] = Field(description="the events whose text it comes from (export)")


class TextInsights(BaseModel):
    texts: int = Field(description="texts analysed (the newest 200 events with a text)")
    language: str | None = Field(default=None, description="ru, en or other: the most frequent")
    languages: list[Share] = Field(default_factory=list)
    sentiment: SentimentSummary | None = None
    emotions: list[Share] = Field(
        default_factory=list, description="share of texts showing each emotion, strongest first")
    dominant_emotion: str | None = None
    keywords: list[KeywordOut] = Field(default_factory=list)
    reason: Reason
    attribution: str = ATTRIBUTION


def _share(counter: Counter[str], total: int) -> list[Share]:
    return [Share(key=k, share=round(v / total, 4), texts=v)
            for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def text_insights(events: Sequence[Event], analyzer: TextAnalyzer, now: datetime,
                  memo: dict[str, Any] | None = None) -> TextInsights | None:
    """The person's text insights, or ``None`` when none of their events has a text.
    ``memo`` (event id -> analysis), when given, keeps each text's analysis so that a person's
    next summary reads only their new texts."""
    written = sorted((e for e in events if e.text and e.text.strip()),
                     key=lambda e: e.timestamp, reverse=True)[:MAX_TEXTS]
    if not written:
        return None
    languages: Counter[str] = Counter()
    sentiments: Counter[str] = Counter()
    emotions: Counter[str] = Counter()
    recent: Counter[str] = Counter()
    last: tuple[str, datetime] | None = None
    scored = 0
    cleaned: list[tuple[str, str]] = []
    sources: list[str] = []
    _, models, keyword_model = analyzer.models()
    for event in written:
        assert event.text is not None
        known = memo.get(event.event_id) if memo is not None else None
        if known is None:
            analysis = analyzer.analyse(event.text)
            predicted = (models[analysis.language or ""].predict_emotions(
                analysis.cleaned, cleaned=True) if analysis.scores is not None else [])
            known = (analysis, predicted)
            if memo is not None:
                memo[event.event_id] = known
        analysis, predicted = known
        languages[analysis.language or "unknown"] += 1
        if analysis.language in models:
            cleaned.append((analysis.language or "", analysis.cleaned))
            sources.append(event.event_id)
        if analysis.scores is None:
            continue
        scored += 1
        label = max(SENTIMENTS, key=lambda s: analysis.scores.sentiment[s])  # type: ignore[union-attr]
        sentiments[label] += 1
        if last is None:
            last = (label, event.timestamp)
        if event.timestamp >= now - timedelta(days=RECENT_DAYS):
            recent[label] += 1
        emotions.update(predicted)
    total = len(written)
    language_shares = _share(languages, total)
    main = next((s.key for s in language_shares if s.key != "unknown"), None)
    sentiment = None
    emotion_shares: list[Share] = []
    dominant = None
    if scored:
        sentiment = SentimentSummary(
            **{f"{s}_share": round(sentiments[s] / scored, 4) for s in SENTIMENTS},
            last=last[0] if last else None, last_at=last[1] if last else None,
            recent_negative_share=round(recent["negative"] / sum(recent.values()), 4)
            if recent else None,
        )
        emotion_shares = [Share(key=e, share=round(emotions[e] / scored, 4), texts=emotions[e])
                          for e in sorted(EMOTIONS, key=lambda e: (-emotions[e], e))
                          if emotions[e]]
        dominant = next((s.key for s in emotion_shares if s.key != "neutral"),
                        emotion_shares[0].key if emotion_shares else None)
    found = keywords(cleaned, keyword_model, n=10)
    keyword_out = []
    for k in found:
        ids = [sources[i] for i, (lang, text) in enumerate(cleaned)
               if k.keyword in text.lower().replace("ё", "е")][:20]
        keyword_out.append(KeywordOut(keyword=k.keyword, language=_language_of(k.keyword),
                                      score=k.score, count=k.count, event_ids=ids))
    return TextInsights(
        texts=total, language=main, languages=language_shares, sentiment=sentiment,
        emotions=emotion_shares, dominant_emotion=dominant, keywords=keyword_out,
        reason=_reason(total, main, sentiment, dominant, keyword_out),
    )


def _language_of(word: str) -> str:
    return "en" if word.isascii() else "ru"


def _reason(total: int, language: str | None, sentiment: SentimentSummary | None,
            dominant: str | None, found: list[KeywordOut]) -> Reason:
    words = ", ".join(k.keyword for k in found[:5]) or "-"
    if sentiment is None:
        return Reason(
            en=f"{total} texts, language {language or 'unknown'}: no sentiment model for it. "
               f"Keywords: {words}.",
            ru=f"Текстов: {total}, язык {language or 'не определён'}: для него нет модели "
               f"тональности. Ключевые слова: {words}.",
        )
    tone = max(SENTIMENTS, key=lambda s: getattr(sentiment, f"{s}_share"))
    share = getattr(sentiment, f"{tone}_share")
    return Reason(
        en=f"{total} texts, mostly {language}: {share:.0%} {tone}, main emotion "
           f"{dominant or 'none'}. Keywords: {words}.",
        ru=f"Текстов: {total}, в основном {language}: {share:.0%} — "
           f"{SENTIMENTS_RU[tone]} тональность, главная эмоция "
           f"{EMOTIONS_RU.get(dominant or '', 'нет')}. Ключевые слова: {words}.",
    )


def text_facts(text: TextInsights | None) -> dict[str, Any]:
    """Rule fields from a person's text insights (absent values make comparisons false)."""
    if text is None:
        return {"texts": 0, "languages": set(), "emotions": set(), "keywords": set()}
    s = text.sentiment
    return {
        "texts": text.texts,
        "language": text.language,
        "languages": {x.key for x in text.languages if x.key != "unknown"},
        "sentiment.negative_share": s.negative_share if s else None,
        "sentiment.positive_share": s.positive_share if s else None,
        "sentiment.neutral_share": s.neutral_share if s else None,
        "sentiment.recent_negative_share": s.recent_negative_share if s else None,
        "sentiment.last": s.last if s else None,
        "emotion.dominant": text.dominant_emotion,
        "emotions": {e.key for e in text.emotions if e.share >= 0.2},
        "keywords": {k.keyword for k in text.keywords},
    }


class ProfileText(BaseModel):
    """What the person's own profile text (``profile.bio``) says: its language and keywords,
    each kept with the field it came from (the export shows it)."""

    language: str | None
    keywords: list[str] = Field(default_factory=list)
    source: str = "profile.bio"
    reason: Reason


def profile_text_insights(bio: str | None, analyzer: TextAnalyzer) -> ProfileText | None:
    """Language and keywords of a profile's bio (Russian and English words both read: a Russian
    bio naming English tools keeps them); None without a bio."""
    if not bio or not bio.strip():
        return None
    analysis = analyzer.analyse(bio)
    _, models, keyword_model = analyzer.models()
    found = []
    if analysis.language in models:
        found = [k.keyword for k in keywords(
            [("ru", analysis.cleaned), ("en", analysis.cleaned)], keyword_model, n=10)]
    words_en = ", ".join(found[:5]) or "-"
    return ProfileText(
        language=analysis.language, keywords=found,
        reason=Reason(en=f"Profile text in {analysis.language or 'an unknown language'}; "
                         f"keywords: {words_en}.",
                      ru=f"Текст профиля: язык {analysis.language or 'не определён'}; "
                         f"ключевые слова: {words_en}."))
