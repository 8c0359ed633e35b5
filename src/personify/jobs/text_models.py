"""Train the shipped text models from the corpora in ``../shared/datasets`` (``train`` extra:
scikit-learn). ``personify insights train-text`` runs it; no random state is involved
(liblinear / lbfgs, fixed hashing): the same data give the same word lists and weights up to
floating-point summation order.

- ``language.json``: the 5,000 most frequent English words of the GoEmotions train split.
- ``keywords.json``: per language the 150 words found in most documents (stop words) and the
  document frequency of every Snowball stem seen in at least two training documents.
- ``emotion_ru.npz``: CEDR train (emotions; sentiment derived: joy positive, sadness / fear /
  anger negative, surprise / no emotion neutral) plus the machine-translated GoEmotions dev set
  of ru-goemotions for sentiment. ``emotion_en.npz``: GoEmotions train, Ekman groups (disgust
  counted as anger) and sentiment (ambiguous counted as neutral). Thresholds of each emotion are
  tuned for F1 on held-out data (CEDR: every tenth training text; GoEmotions: the dev split), then
  the model is refitted on all the training data.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from personify.insights.lemmas import STEMMER, backend, normal_forms, stems
from personify.insights.text import (
    BUCKETS,
    EMOTIONS,
    SENTIMENTS,
    Normaliser,
    TextModel,
    clean,
    features,
    hashed,
    idf_weights,
    stack_rows,
    words,
)

C_GRID = {"ru": (0.5, 2.0, 8.0), "en": (2.0,)}
"""Inverse regularisation strengths tried per language (the English corpus is five times larger:
one value keeps its training within minutes on two cores)."""
REFIT = {"ru": True, "en": False}
"""Refit on training + tuning data with the chosen settings (Russian: the held-out tenth of CEDR
train goes back in); English keeps the model whose thresholds were tuned on the dev split."""
ENGLISH_WORDS = 5_000
STOPWORDS = 150

CEDR_NEGATIVE = ("sadness", "fear", "anger")
EKMAN_TO_OURS = {"joy": "joy", "sadness": "sadness", "surprise": "surprise", "fear": "fear",
                 "anger": "anger", "disgust": "anger", "neutral": "neutral"}


@dataclass
class Example:
    text: str
    emotions: set[str] | None  # None: no emotion labels (sentiment only)
    sentiment: str | None  # None: mixed or not labelled
    split: str
    source: str = ""
    id: str = ""


@dataclass
class Corpora:
    cedr: list[Example] = field(default_factory=list)
    ru_mt: list[Example] = field(default_factory=list)
    en: list[Example] = field(default_factory=list)


def _rows(path: Path) -> Iterable[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def _sentiment_of(value: str) -> str | None:
    parts = set(value.split("|")) - {""}
    parts = {"neutral" if p == "ambiguous" else p for p in parts}
    if len(parts - {"neutral"}) > 1:
        return None  # positive and negative: mixed
    rest = parts - {"neutral"}
    return next(iter(rest)) if rest else "neutral"


def _ekman(labels: str) -> set[str]:
    return {EKMAN_TO_OURS[e] for e in labels.split("|") if e in EKMAN_TO_OURS}


def load_corpora(datasets: Path) -> Corpora:
    corpora = Corpora()
    scheme = orjson.loads((datasets / "en_goemotions" / "label_scheme.json").read_bytes())
    ekman_of = {label: group for group, labels in scheme["ekman_mapping"].items()
                for label in labels}
    ekman_of["neutral"] = "neutral"
    for row in _rows(datasets / "ru_emotion" / "cedr.csv.gz"):
        emotions = {e for e in EMOTIONS[:5] if row[e] == "1"} or {"neutral"}
        positive, negative = "joy" in emotions, bool(emotions & set(CEDR_NEGATIVE))
        sentiment = None if positive and negative else (
            "positive" if positive else "negative" if negative else "neutral")
        corpora.cedr.append(Example(row["text"], emotions, sentiment, row["split"],
                                    row["source"], row["id"]))
    for row in _rows(datasets / "ru_emotion" / "ru_goemotions_mt.csv.gz"):
        emotions = {EKMAN_TO_OURS[ekman_of[x]] for x in row["labels"].split("|")}
        corpora.ru_mt.append(Example(row["ru_text"], emotions, _sentiment_of(row["sentiment"]),
                                     row["split"], id=row["id"]))
    for row in _rows(datasets / "en_goemotions" / "goemotions.csv.gz"):
        corpora.en.append(Example(row["text"], _ekman(row["ekman"]),
                                  _sentiment_of(row["sentiment"]), row["split"], id=row["id"]))
    return corpora


def _holdout(example: Example) -> bool:
    return int(hashlib.sha1(example.id.encode()).hexdigest(), 16) % 10 == 0


# ----------------------------------------------------------------------------- features


def term_matrix(texts: Sequence[str], normal: Normaliser | None = None) -> Any:
    """Sparse (texts x buckets) sublinear term frequencies of :func:`features`."""
    return stack_rows([hashed(features(text, normal=normal)) for text in texts], BUCKETS)


def idf_of(tf: Any) -> np.ndarray:
    return idf_weights(tf, BUCKETS)


def tfidf(tf: Any, idf: np.ndarray) -> Any:
    from sklearn.preprocessing import normalize

    return normalize(tf.multiply(idf).tocsr(), norm="l2")


# ----------------------------------------------------------------------------- models


@dataclass
class Fitted:
    emotion_coef: np.ndarray  # [6, buckets]
    emotion_bias: np.ndarray
    sentiment_coef: np.ndarray  # [3, buckets]
    sentiment_bias: np.ndarray


def _fit(x: Any, emotions: list[set[str] | None], sentiments: list[str | None],
         c_emotion: float, c_sentiment: float) -> Fitted:
    from sklearn.linear_model import LogisticRegression

    rows = np.array([e is not None for e in emotions])
    coef, bias = np.zeros((len(EMOTIONS), BUCKETS)), np.zeros(len(EMOTIONS))
    for k, emotion in enumerate(EMOTIONS):
        y = np.array([emotion in e for e in emotions if e is not None])
        model = LogisticRegression(C=c_emotion, solver="liblinear", class_weight="balanced")
        model.fit(x[rows], y)
        coef[k], bias[k] = model.coef_[0], model.intercept_[0]
    keep = np.array([s is not None for s in sentiments])
    y_s = np.array([SENTIMENTS.index(s) for s in sentiments if s is not None])
    sentiment = LogisticRegression(C=c_sentiment, max_iter=300, class_weight="balanced")
    sentiment.fit(x[keep], y_s)
    return Fitted(coef, bias, sentiment.coef_, sentiment.intercept_)


def emotion_probabilities(fitted: Fitted, x: Any) -> np.ndarray:
    z = np.asarray(x @ fitted.emotion_coef.T) + fitted.emotion_bias
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


def f1_binary(y: np.ndarray, p: np.ndarray) -> float:
    tp = float(np.sum(y & p))
    denominator = float(np.sum(y) + np.sum(p))
    return 2 * tp / denominator if denominator else 0.0


def decide(probabilities: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Labels above their thresholds; the relatively strongest one when none is."""
    chosen = probabilities >= thresholds
    empty = ~chosen.any(axis=1)
    best = np.argmax(probabilities / thresholds, axis=1)
    chosen[empty, best[empty]] = True
    return chosen


def emotion_truth(emotions: Sequence[set[str] | None]) -> np.ndarray:
    return np.array([[emotion in (e or set()) for emotion in EMOTIONS] for e in emotions])


def macro_f1(truth: np.ndarray, chosen: np.ndarray) -> float:
    return float(np.mean([f1_binary(truth[:, k], chosen[:, k]) for k in range(truth.shape[1])]))


def tune_thresholds(probabilities: np.ndarray, truth: np.ndarray) -> np.ndarray:
    grid = np.round(np.arange(0.1, 0.91, 0.05), 2)
    return np.array([
        grid[int(np.argmax([f1_binary(truth[:, k], probabilities[:, k] >= t) for t in grid]))]
        for k in range(truth.shape[1])
    ])


def sentiment_macro_f1(truth: Sequence[str | None], predicted: Sequence[str]) -> float:
    pairs = [(t, p) for t, p in zip(truth, predicted, strict=True) if t is not None]
    t_arr = np.array([t for t, _ in pairs])
    p_arr = np.array([p for _, p in pairs])
    return float(np.mean([f1_binary(t_arr == s, p_arr == s) for s in SENTIMENTS]))


@dataclass
class LanguageRun:
    model: TextModel
    selection: dict[str, Any]


def train_language(train: list[Example], tune: list[Example], meta: dict[str, Any],
                   *, grid: Sequence[float] = (2.0,), refit: bool = True,
                   log: Any = print, lemmas: bool = False) -> LanguageRun:
    """Pick C on the tuning examples (emotion macro-F1 / sentiment macro-F1), tune thresholds,
    refit on train + tune with the chosen settings (or keep the best grid model). ``lemmas``:
    add each word's normal form as a feature (by the language's backend in this process,
    recorded in the model's ``normal_forms``)."""
    using = backend(meta["language"]) if lemmas else None
    normal: Normaliser | None = None
    if using is not None:
        language = meta["language"]

        def normal(ws: Sequence[str]) -> list[str]:
            return normal_forms(language, ws, using=using)

        meta = {**meta, "normal_forms": using}
    tf_train = term_matrix([e.text for e in train], normal)
    idf = idf_of(tf_train)
    x_train = tfidf(tf_train, idf)
    x_tune = tfidf(term_matrix([e.text for e in tune], normal), idf)
    tune_truth = emotion_truth([e.emotions for e in tune])
    emo_rows = np.array([e.emotions is not None for e in tune])
    best: dict[str, Any] = {"emotion": (-1.0, 0.0, None, None), "sentiment": (-1.0, 0.0, None)}
    for c in grid:
        fitted = _fit(x_train, [e.emotions for e in train], [e.sentiment for e in train], c, c)
        probabilities = emotion_probabilities(fitted, x_tune)[emo_rows]
        thresholds = tune_thresholds(probabilities, tune_truth[emo_rows])
        f1 = macro_f1(tune_truth[emo_rows], decide(probabilities, thresholds))
        z = np.asarray(x_tune @ fitted.sentiment_coef.T) + fitted.sentiment_bias
        s_f1 = sentiment_macro_f1([e.sentiment for e in tune],
                                  [SENTIMENTS[i] for i in np.argmax(z, axis=1)])
        log(f"  C={c}: emotion macro-F1 {f1:.3f}, sentiment macro-F1 {s_f1:.3f} (tuning set)")
        if f1 > best["emotion"][0]:
            best["emotion"] = (f1, c, thresholds, fitted)
        if s_f1 > best["sentiment"][0]:
            best["sentiment"] = (s_f1, c, fitted)
    everything = train + tune if refit else train
    if refit:
        tf_all = term_matrix([e.text for e in everything], normal)
        idf = idf_of(tf_all)
        fitted = _fit(tfidf(tf_all, idf), [e.emotions for e in everything],
                      [e.sentiment for e in everything], best["emotion"][1],
                      best["sentiment"][1])
    else:
        e_fit, s_fit = best["emotion"][3], best["sentiment"][2]
        fitted = Fitted(e_fit.emotion_coef, e_fit.emotion_bias, s_fit.sentiment_coef,
                        s_fit.sentiment_bias)
    weights = np.vstack([fitted.emotion_coef, fitted.sentiment_coef]).T.astype(np.float32)
    scales = np.abs(weights).max(axis=0) / 127.0
    scales[scales == 0] = 1.0
    quantised = np.round(weights / scales).astype(np.int8)
    selection = {"c_emotion": best["emotion"][1], "c_sentiment": best["sentiment"][1],
                 "tuning_emotion_macro_f1": round(best["emotion"][0], 4),
                 "tuning_sentiment_macro_f1": round(best["sentiment"][0], 4),
                 "train_texts": len(everything)}
    model = TextModel(
        idf=idf, weights=quantised, scales=scales,
        bias=np.concatenate([fitted.emotion_bias, fitted.sentiment_bias]),
        thresholds=np.asarray(best["emotion"][2]), meta={**meta, **selection,
                                                         "emotions": list(EMOTIONS),
                                                         "sentiments": list(SENTIMENTS),
                                                         "buckets": BUCKETS})
    return LanguageRun(model, selection)


# ----------------------------------------------------------------------------- word lists


def english_words(texts: Iterable[str], n: int = ENGLISH_WORDS) -> list[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w in words(clean(text)) if w.isascii())
    return sorted(w for w, _ in counts.most_common(n))


def keyword_tables(texts_by_language: dict[str, list[str]]) -> dict[str, Any]:
    stopwords: dict[str, list[str]] = {}
    document_frequency: dict[str, dict[str, int]] = {}
    documents: dict[str, int] = {}
    normal: dict[str, dict[str, Any]] = {}
    for language, texts in texts_by_language.items():
        word_df: Counter[str] = Counter()
        stem_df: Counter[str] = Counter()
        lemma_df: Counter[str] = Counter()
        using = backend(language)
        for text in texts:
            ws = sorted(set(words(clean(text))))
            word_df.update(ws)
            stem_df.update(set(stems(language, ws)))
            if using != STEMMER:
                lemma_df.update(set(normal_forms(language, ws, using=using)))
        stopwords[language] = sorted(w for w, _ in word_df.most_common(STOPWORDS))
        document_frequency[language] = {s: n for s, n in sorted(stem_df.items()) if n >= 2}
        documents[language] = len(texts)
        if using != STEMMER:
            normal[language] = {"backend": using, "document_frequency": {
                s: n for s, n in sorted(lemma_df.items()) if n >= 2}}
    return {"stopwords": stopwords, "document_frequency": document_frequency,
            "documents": documents, "normal_forms": normal}


LICENCE_FILES = {
    "ru_emotion/LICENSE.apache-2.0.txt": "apache-2.0.LICENSE",
    "ru_emotion/LICENSE.ru-goemotions-MIT.txt": "ru-goemotions-MIT.LICENSE",
}


@dataclass
class TrainResult:
    directory: Path
    seconds: float
    selection: dict[str, dict[str, Any]]
    files: dict[str, int]


def train_text_models(datasets: Path, out: Path, *, log: Any = print,
                      languages: Sequence[str] = ("ru", "en"),
                      lemmas: bool = False) -> TrainResult:
    """Train every text artefact from the corpora under ``datasets`` into ``out`` (the emotion
    models of ``languages`` only, to rebuild one). ``lemmas``: the emotion models also read each
    word's normal form (:mod:`personify.insights.lemmas`; the keyword tables always carry a lemma
    table when the ``text`` extra is installed)."""
    started = time.perf_counter()
    corpora = load_corpora(datasets)
    out.mkdir(parents=True, exist_ok=True)
    en_train = [e for e in corpora.en if e.split == "train"]
    language = {"en": english_words(e.text for e in en_train), "min_share": 0.5,
                "source": "GoEmotions train split (Apache-2.0)"}
    (out / "language.json").write_bytes(orjson.dumps(language))
    cedr_train = [e for e in corpora.cedr if e.split == "train"]
    ru_dev = [Example(e.text, None, e.sentiment, e.split, id=e.id)
              for e in corpora.ru_mt if e.split == "dev"]
    tables = keyword_tables({"ru": [e.text for e in cedr_train + ru_dev],
                             "en": [e.text for e in en_train]})
    (out / "keywords.json").write_bytes(orjson.dumps(tables))
    selection: dict[str, dict[str, Any]] = {}
    if "ru" in languages:
        log("ru: CEDR train (+ ru-goemotions dev for sentiment)")
        ru = train_language(
            [e for e in cedr_train if not _holdout(e)] + ru_dev,
            [e for e in cedr_train if _holdout(e)],
            {"language": "ru", "data": "CEDR train (Apache-2.0); ru-goemotions dev, machine "
                                       "translation of GoEmotions (MIT over Apache-2.0)"},
            grid=C_GRID["ru"], refit=REFIT["ru"], log=log, lemmas=lemmas)
        ru.model.save(out / "emotion_ru.npz")
        selection["ru"] = ru.selection
    if "en" in languages:
        log("en: GoEmotions train, thresholds on dev")
        en = train_language(
            en_train, [e for e in corpora.en if e.split == "dev"],
            {"language": "en", "data": "GoEmotions train subset (Apache-2.0)"},
            grid=C_GRID["en"], refit=REFIT["en"], log=log, lemmas=lemmas)
        en.model.save(out / "emotion_en.npz")
        selection["en"] = en.selection
    for source, target in LICENCE_FILES.items():
        shutil.copyfile(datasets / source, out / target)
    files = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}
    return TrainResult(out, time.perf_counter() - started, selection, files)
