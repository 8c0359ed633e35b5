"""Understanding what people write, Russian and English, with NumPy only at serving time.

- :func:`detect_language`: ``ru``, ``en`` or ``other`` (``None`` when a text has no letters):
  the script decides Cyrillic against Latin; Cyrillic with letters Russian does not use
  (Ukrainian, Belarusian, Serbian ...) is ``other``; Latin text is English when enough of its
  words are among the 5,000 most frequent English words of the training corpus.
- :class:`TextModel`: hashed word and character n-gram TF-IDF features and logistic-regression
  weights (int8, one scale per output) for six emotions (multi-label) and three-way sentiment,
  one model per language, trained by :mod:`personify.jobs.text_models` from CEDR and GoEmotions.
- :func:`keywords`: words grouped by their normal form (dictionary lemmas with the ``text``
  extra, Snowball stems without: :mod:`personify.insights.lemmas`) scored by TF-IDF against the
  corpus' document frequencies, without stop words, each shown by its most frequent written
  form.

The artefacts are shipped in ``personify/insights/text_models`` with their licence notices
(CEDR, GoEmotions: Apache-2.0; ru-goemotions translation: MIT). Every text is analysed up to
:data:`MAX_ANALYSED_CHARS` characters after markup (HTML tags, entities, URLs, ``[NAME]``
placeholders) is removed; an empty or letter-less text gives no language and neutral scores.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from personify.insights.lemmas import STEMMER, backend, normal_forms

MAX_ANALYSED_CHARS = 2_000
"""Characters of one text that are analysed (the rest is ignored; events keep up to 8,000)."""
BUCKETS = 1 << 18
"""Hashed feature space of the emotion / sentiment models."""
EMOTIONS = ("joy", "sadness", "surprise", "fear", "anger", "neutral")
SENTIMENTS = ("negative", "neutral", "positive")
LANGUAGES = ("ru", "en")
MODEL_DIR = "text_models"

_MARKUP = re.compile(
    r"<[^<>]{0,300}>|&[A-Za-z#0-9]{1,10};|https?://\S+|www\.\S+|\[[A-Z]{2,12}\]|[*_`~#>|]{2,}"
)
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_PUNCT = re.compile(r"[!?()]|:\)|:\(|\)\)|\(\(")
_NOT_RUSSIAN_CYRILLIC = frozenset("іїєґўђјљњћџѣѵ")


def clean(text: str) -> str:
    """The part of a text that is analysed: the first characters, markup removed."""
    return _MARKUP.sub(" ", text[: MAX_ANALYSED_CHARS + 400])[:MAX_ANALYSED_CHARS]


def words(text: str) -> list[str]:
    """Lower-case words of a cleaned text (``ё`` read as ``е``)."""
    return [w.lower().replace("ё", "е").replace("’", "'") for w in _WORD.findall(text)]


def script_counts(text: str) -> tuple[int, int, int, bool]:
    """(Cyrillic letters, Latin letters, other letters, uses a non-Russian Cyrillic letter)."""
    cyr = lat = other = 0
    foreign = False
    for ch in text:
        if not ch.isalpha():
            continue
        if "\u0400" <= ch <= "\u04ff":
            cyr += 1
            if ch.lower() in _NOT_RUSSIAN_CYRILLIC:
                foreign = True
        elif ch.isascii():
            lat += 1
        else:
            other += 1
    return cyr, lat, other, foreign


# ----------------------------------------------------------------------------- artefacts


def _model_path(name: str) -> Path:
    return Path(str(resources.files("personify.insights").joinpath(MODEL_DIR, name)))


@dataclass(frozen=True)
class LanguageModel:
    english_words: frozenset[str]
    min_share: float = 0.5

    @classmethod
    def load(cls, path: Path | None = None) -> LanguageModel:
        data = orjson.loads((path or _model_path("language.json")).read_bytes())
        return cls(frozenset(data["en"]), float(data.get("min_share", 0.5)))

    def detect(self, text: str, *, cleaned: bool = False) -> str | None:
        text = text if cleaned else clean(text)
        cyr, lat, other, foreign = script_counts(text)
        letters = cyr + lat + other
        if letters == 0:
            return None
        if cyr > 0.5 * letters:
            return "other" if foreign else "ru"
        if lat <= 0.5 * letters:
            return "other"
        ws = [w for w in words(text) if w.isascii()]
        if not ws:
            return "other"
        known = sum(1 for w in ws if w in self.english_words)
        return "en" if known / len(ws) >= self.min_share else "other"


Normaliser = Callable[[Sequence[str]], list[str]]
"""Words -> their normal forms (``personify.insights.lemmas``), for the ``n:`` features."""


def features(text: str, *, cleaned: bool = False, normal: Normaliser | None = None,
             ) -> list[str]:
    """The named features of one text: words, word pairs, character 3-5-grams of each word,
    emoticon / punctuation marks, and with ``normal`` each word's normal form. Training and
    serving both call this."""
    text = text if cleaned else clean(text)
    ws = words(text)
    out = [f"w:{w}" for w in ws]
    if normal is not None:
        out.extend(f"n:{form}" for form in normal(ws))
    out.extend(f"b:{a} {b}" for a, b in itertools.pairwise(ws))
    for w in ws:
        padded = f" {w} "
        n = len(padded)
        for size in (3, 4, 5):
            out.extend(f"c:{padded[i:i + size]}" for i in range(n - size + 1))
    out.extend(f"p:{m}" for m in _PUNCT.findall(text))
    return out


def hashed(feats: Iterable[str], buckets: int = BUCKETS) -> tuple[np.ndarray, np.ndarray]:
    """Bucket indices and sublinear term frequencies (1 + log tf) of named features."""
    counts = Counter(zlib.crc32(f.encode()) % buckets for f in feats)
    if not counts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
    return idx, 1.0 + np.log(tf)


def stack_rows(rows: Sequence[tuple[np.ndarray, np.ndarray]], buckets: int = BUCKETS) -> Any:
    """A sparse (len(rows) x buckets) float32 CSR matrix of per-text (bucket indices, term
    frequencies) pairs, e.g. of :func:`hashed` or :func:`hashed_text`."""
    from scipy import sparse

    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(idx) for idx, _ in rows])
    return sparse.csr_matrix(
        (np.concatenate([tf for _, tf in rows]) if rows else np.zeros(0, np.float32),
         np.concatenate([idx for idx, _ in rows]) if rows else np.zeros(0, np.int64), indptr),
        shape=(len(rows), buckets), dtype=np.float32)


def idf_weights(tf: Any, buckets: int = BUCKETS) -> np.ndarray:
    """Smoothed inverse document frequencies ``log((1 + n) / (1 + df)) + 1`` of the bucket
    columns of a (texts x buckets) CSR matrix, float32."""
    df = np.bincount(tf.indices, minlength=buckets)
    return (np.log((1 + tf.shape[0]) / (1 + df)) + 1.0).astype(np.float32)


@lru_cache(maxsize=50_000)
def _word_buckets(word: str, buckets: int) -> tuple[int, ...]:
    """Buckets of one word's own features (the word and its character 3-5-grams)."""
    padded = f" {word} "
    n = len(padded)
    names = [f"w:{word}"]
    for size in (3, 4, 5):
        names.extend(f"c:{padded[i:i + size]}" for i in range(n - size + 1))
    return tuple(zlib.crc32(f.encode()) % buckets for f in names)


@lru_cache(maxsize=50_000)
def _normal_bucket(form: str, buckets: int) -> int:
    return zlib.crc32(f"n:{form}".encode()) % buckets


def hashed_text(text: str, buckets: int = BUCKETS, *, cleaned: bool = False,
                normal: Normaliser | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``hashed(features(text, normal=normal))`` with each word's buckets cached (words
    repeat): the serving path. Equal to the training path by construction (a test checks it)."""
    text = text if cleaned else clean(text)
    ws = words(text)
    counts: Counter[int] = Counter()
    for w in ws:
        counts.update(_word_buckets(w, buckets))
    if normal is not None:
        counts.update(_normal_bucket(form, buckets) for form in normal(ws))
    counts.update(zlib.crc32(f"b:{a} {b}".encode()) % buckets for a, b in itertools.pairwise(ws))
    counts.update(zlib.crc32(f"p:{m}".encode()) % buckets for m in _PUNCT.findall(text))
    if not counts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
    return idx, 1.0 + np.log(tf)


def normaliser(meta: dict[str, Any]) -> Normaliser | None:
    """The ``n:`` features a model was trained with (``meta["normal_forms"]``: a backend of
    :mod:`personify.insights.lemmas`; absent = none). A dictionary backend that is not installed
    here falls back to Snowball stems (the model then loses part of that signal: see
    docs/benchmarks/text.md)."""
    using, language = meta.get("normal_forms"), meta.get("language")
    if not using or language not in LANGUAGES:
        return None
    return lambda ws: normal_forms(str(language), ws, using=str(using))


@dataclass
class TextScores:
    emotions: dict[str, float]
    sentiment: dict[str, float]


class TextModel:
    """One language's emotion (multi-label, sigmoid) and sentiment (softmax) weights."""

    def __init__(self, idf: np.ndarray, weights: np.ndarray, scales: np.ndarray,
                 bias: np.ndarray, thresholds: np.ndarray, meta: dict[str, Any]) -> None:
        self.idf = idf.astype(np.float32)
        self.weights = weights  # int8 [buckets, 6 emotions + 3 sentiments]
        self.scales = scales.astype(np.float32)
        self.bias = bias.astype(np.float32)
        self.thresholds = thresholds.astype(np.float32)
        self.meta = meta
        self.normal = normaliser(meta)

    @classmethod
    def load(cls, path: Path) -> TextModel:
        with np.load(path, allow_pickle=False) as data:
            meta = orjson.loads(bytes(data["meta"]))
            return cls(data["idf"], data["weights"], data["scales"], data["bias"],
                       data["thresholds"], meta)

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path, idf=self.idf.astype(np.float16), weights=self.weights, scales=self.scales,
            bias=self.bias, thresholds=self.thresholds,
            meta=np.frombuffer(orjson.dumps(self.meta), dtype=np.uint8),
        )

    def vector(self, text: str, *, cleaned: bool = False) -> tuple[np.ndarray, np.ndarray]:
        idx, tf = hashed_text(text, len(self.idf), cleaned=cleaned, normal=self.normal)
        values = tf * self.idf[idx]
        norm = float(np.sqrt(np.dot(values, values)))
        return idx, (values / norm if norm > 0 else values)

    def logits(self, text: str, *, cleaned: bool = False) -> np.ndarray:
        idx, values = self.vector(text, cleaned=cleaned)
        raw = values @ self.weights[idx].astype(np.float32) if len(idx) else np.zeros(
            self.weights.shape[1], dtype=np.float32)
        return np.asarray(raw * self.scales + self.bias)

    def score(self, text: str, *, cleaned: bool = False) -> TextScores:
        z = self.logits(text, cleaned=cleaned)
        k = len(EMOTIONS)
        emotions = 1.0 / (1.0 + np.exp(-z[:k]))
        s = z[k:] - z[k:].max()
        sentiment = np.exp(s) / np.exp(s).sum()
        return TextScores(
            emotions={e: round(float(p), 4) for e, p in zip(EMOTIONS, emotions, strict=True)},
            sentiment={s_: round(float(p), 4)
                       for s_, p in zip(SENTIMENTS, sentiment, strict=True)},
        )

    def predict_emotions(self, text: str, *, cleaned: bool = False) -> list[str]:
        """Emotions above their tuned thresholds (the strongest one when none is)."""
        z = self.logits(text, cleaned=cleaned)[: len(EMOTIONS)]
        p = 1.0 / (1.0 + np.exp(-z))
        chosen = [e for e, v, t in zip(EMOTIONS, p, self.thresholds, strict=True) if v >= t]
        return chosen or [EMOTIONS[int(np.argmax(p / self.thresholds))]]


@dataclass(frozen=True)
class KeywordModel:
    stopwords: dict[str, frozenset[str]]
    document_frequency: dict[str, dict[str, int]]
    """Per language: document frequency of each Snowball stem."""
    documents: dict[str, int]
    normal_frequency: dict[str, tuple[str, dict[str, int]]] = field(default_factory=dict)
    """Per language: (backend, document frequency of each lemma) when the tables were built with
    the ``text`` extra; used when this process has the same backend."""

    @classmethod
    def load(cls, path: Path | None = None) -> KeywordModel:
        data = orjson.loads((path or _model_path("keywords.json")).read_bytes())
        return cls(
            stopwords={lang: frozenset(v) for lang, v in data["stopwords"].items()},
            document_frequency=data["document_frequency"],
            documents={lang: int(n) for lang, n in data["documents"].items()},
            normal_frequency={lang: (v["backend"], v["document_frequency"])
                              for lang, v in data.get("normal_forms", {}).items()},
        )

    def keys(self, language: str) -> tuple[str, dict[str, int]]:
        """The backend keywords are grouped by in this process and its document frequencies:
        the lemma table when its backend is installed here, else the stem table."""
        found = self.normal_frequency.get(language)
        if found is not None and found[0] == backend(language):
            return found
        return STEMMER, self.document_frequency.get(language, {})


_STEMMERS = {"ru": "russian", "en": "english"}


@dataclass(frozen=True)
class Keyword:
    keyword: str
    stem: str
    score: float
    count: int


def keywords(texts: Sequence[tuple[str, str]], model: KeywordModel, n: int = 10,
             ) -> list[Keyword]:
    """The ``n`` most characteristic words of ``(language, cleaned text)`` pairs: term count in
    these texts x log inverse document frequency in the language's corpus; stop words, words of
    fewer than three letters and words of other languages are left out."""
    counts: Counter[tuple[str, str]] = Counter()
    forms: dict[tuple[str, str], Counter[str]] = {}
    tables: dict[str, tuple[str, dict[str, int]]] = {}
    for language, text in texts:
        if language not in _STEMMERS:
            continue
        if language not in tables:
            tables[language] = model.keys(language)
        stop = model.stopwords.get(language, frozenset())
        tokens = [w for w in words(text) if len(w) >= 3 and w not in stop
                  and (w.isascii() if language == "en" else not w.isascii())]
        normal = normal_forms(language, tokens, using=tables[language][0])
        for token, stem in zip(tokens, normal, strict=True):
            key = (language, stem)
            counts[key] += 1
            forms.setdefault(key, Counter())[token] += 1
    scored: list[Keyword] = []
    for (language, stem), count in counts.items():
        df = tables[language][1].get(stem, 0)
        idf = math.log((1 + model.documents.get(language, 1)) / (1 + df)) + 1.0
        scored.append(Keyword(keyword=forms[(language, stem)].most_common(1)[0][0], stem=stem,
                              score=round((1 + math.log(count)) * idf, 3), count=count))
    scored.sort(key=lambda k: (-k.score, k.keyword))
    return scored[:n]


class TextAnalyzer:
    """The shipped models, loaded once on first use (about a second), shared by threads."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._loaded: tuple[LanguageModel, dict[str, TextModel], KeywordModel] | None = None

    def _path(self, name: str) -> Path:
        return self.directory / name if self.directory is not None else _model_path(name)

    def models(self) -> tuple[LanguageModel, dict[str, TextModel], KeywordModel]:
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = (
                        LanguageModel.load(self._path("language.json")),
                        {lang: TextModel.load(self._path(f"emotion_{lang}.npz"))
                         for lang in LANGUAGES},
                        KeywordModel.load(self._path("keywords.json")),
                    )
        return self._loaded

    def language(self, text: str) -> str | None:
        return self.models()[0].detect(text)

    def analyse(self, text: str) -> TextAnalysis:
        lang_model, text_models, _ = self.models()
        cleaned = clean(text)
        language = lang_model.detect(cleaned, cleaned=True)
        model = text_models.get(language or "")
        if model is None:
            return TextAnalysis(language=language, cleaned=cleaned, scores=None)
        return TextAnalysis(language=language, cleaned=cleaned,
                            scores=model.score(cleaned, cleaned=True))


@dataclass
class TextAnalysis:
    language: str | None
    cleaned: str
    scores: TextScores | None
    """Emotion and sentiment probabilities; ``None`` for a language without a model."""


_default: TextAnalyzer | None = None


def default_analyzer() -> TextAnalyzer:
    global _default
    if _default is None:
        _default = TextAnalyzer()
    return _default
