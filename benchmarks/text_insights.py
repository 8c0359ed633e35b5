"""Text understanding, RU and EN: the shipped models (src/personify/insights/text_models) on the
official test splits of CEDR and GoEmotions, the translated GoEmotions test of ru-goemotions
(reported separately: machine translation), language detection on all three, scoring speed.

Writes benchmarks/results/text.json. Run (about a minute):

    nice -n 10 python benchmarks/text_insights.py [--datasets ../shared/datasets] [--models DIR]

Keys of issue 16: ``emotion_macro_f1_cedr`` (macro-F1 over joy, sadness, surprise, fear, anger,
no emotion on the CEDR test split), ``sentiment_macro_f1_goemotions`` (negative / neutral /
positive on the GoEmotions test split, ambiguous counted as neutral, mixed rows left out),
``texts_per_second`` (one core, one text at a time: clean, detect, score).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import write_results  # noqa: E402
from personify.insights.text import (  # noqa: E402
    EMOTIONS,
    SENTIMENTS,
    TextAnalyzer,
    TextModel,
    clean,
    words,
)
from personify.jobs.text_models import (  # noqa: E402
    Example,
    decide,
    emotion_truth,
    load_corpora,
    macro_f1,
    sentiment_macro_f1,
)

PUBLISHED = {
    "goemotions_bert_macro_f1_28": 0.46,
    "goemotions_bert_macro_f1_ekman": 0.64,
    "goemotions_bert_macro_f1_sentiment_4way": 0.69,
}
"""Demszky et al. 2020 (GoEmotions, ACL), BERT-base fine-tuned on the full train set: 28 labels
(also quoted in the dataset README), Ekman groups and sentiment (positive / negative / ambiguous /
neutral). Our sentiment is 3-way and our emotions are 6 (Ekman with disgust in anger)."""


def _emotion_scores(model: TextModel, examples: list[Example]) -> dict[str, float]:
    rows = [e for e in examples if e.emotions is not None]
    probabilities = np.array([
        1.0 / (1.0 + np.exp(-model.logits(e.text)[: len(EMOTIONS)])) for e in rows])
    truth = emotion_truth([e.emotions for e in rows])
    chosen = decide(probabilities, model.thresholds)
    majority = np.zeros_like(truth)
    majority[:, int(np.argmax(truth.sum(axis=0)))] = True
    per_label = {f"f1_{emotion}": round(float(macro_f1(truth[:, [k]], chosen[:, [k]])), 4)
                 for k, emotion in enumerate(EMOTIONS)}
    return {"macro_f1": macro_f1(truth, chosen), "majority_macro_f1": macro_f1(truth, majority),
            "texts": len(rows), **per_label}


def _sentiment_scores(model: TextModel, examples: list[Example]) -> dict[str, float]:
    rows = [e for e in examples if e.sentiment is not None]
    predicted = [SENTIMENTS[int(np.argmax(model.logits(e.text)[len(EMOTIONS):]))] for e in rows]
    truth = [e.sentiment for e in rows if e.sentiment is not None]
    majority_label = Counter(truth).most_common(1)[0][0]
    return {
        "macro_f1": sentiment_macro_f1(truth, predicted),
        "accuracy": float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)])),
        "majority_macro_f1": sentiment_macro_f1(truth, [majority_label] * len(truth)),
        "majority_accuracy": float(np.mean([t == majority_label for t in truth])),
        "texts": len(rows),
    }


def _speed(analyzer: TextAnalyzer, texts: list[str], seconds: float = 10.0) -> dict[str, float]:
    """Texts per second and per CPU second, BLAS limited to one thread as in the serving
    process (``personify.app``): warm (the same 500 texts again and again, so the per-word
    feature cache is warm) and cold (every text once, the cache emptied first)."""
    from threadpoolctl import threadpool_limits

    from personify.insights.text import _word_buckets

    def rate(fn: Any) -> tuple[float, float]:
        done, started, cpu = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - started < seconds / 2:
            for text in texts[:500]:
                fn(text)
            done += min(len(texts), 500)
        return (done / (time.perf_counter() - started),
                done / max(time.process_time() - cpu, 1e-9))

    with threadpool_limits(limits=1, user_api="blas"):
        analysed, analysed_cpu = rate(analyzer.analyse)
        tokenised, tokenised_cpu = rate(lambda t: words(clean(t)))
        _word_buckets.cache_clear()
        cold = texts[500:5500]
        started, cpu = time.perf_counter(), time.process_time()
        for text in cold:
            analyzer.analyse(text)
        cold_wall, cold_cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"texts_per_second": analysed, "tokenizer_texts_per_second": tokenised,
            "texts_per_second_ratio_to_tokenizer": analysed / tokenised,
            "texts_per_cpu_second": analysed_cpu,
            "tokenizer_texts_per_cpu_second": tokenised_cpu,
            "texts_per_cpu_second_cold": len(cold) / max(cold_cpu, 1e-9),
            "texts_per_second_cold": len(cold) / max(cold_wall, 1e-9)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--models", default=None, help="artefact folder (default: shipped)")
    args = parser.parse_args()
    analyzer = TextAnalyzer(Path(args.models) if args.models else None)
    lang_model, models, _ = analyzer.models()
    corpora = load_corpora(Path(args.datasets))
    cedr_test = [e for e in corpora.cedr if e.split == "test"]
    en_test = [e for e in corpora.en if e.split == "test"]
    mt_test = [e for e in corpora.ru_mt if e.split == "test"]

    cedr = _emotion_scores(models["ru"], cedr_test)
    cedr_by_source = {src: round(_emotion_scores(
        models["ru"], [e for e in cedr_test if e.source == src])["macro_f1"], 4)
        for src in ("lj", "lenta", "twitter")}
    cedr_sentiment = _sentiment_scores(models["ru"], cedr_test)
    en_emotion = _emotion_scores(models["en"], en_test)
    en_sentiment = _sentiment_scores(models["en"], en_test)
    mt_sentiment = _sentiment_scores(models["ru"], mt_test)
    mt_emotion = _emotion_scores(models["ru"], mt_test)
    mt_zero_shot = _sentiment_scores(models["en"], mt_test)  # EN model on RU text: a floor

    language_truth = ([("ru", e.text) for e in cedr_test] + [("ru", e.text) for e in mt_test]
                      + [("en", e.text) for e in en_test])
    detected = [(want, lang_model.detect(text)) for want, text in language_truth]
    by_language = {lang: float(np.mean([d == lang for w, d in detected if w == lang]))
                   for lang in ("ru", "en")}
    majority_language = Counter(w for w, _ in detected).most_common(1)[0][0]

    speed = _speed(analyzer, [e.text for e in cedr_test[:250] + en_test[:250]]
                   + [e.text for e in cedr_test[250:2750] + en_test[250:2750]])
    folder = (Path(args.models) if args.models else
              ROOT / "src" / "personify" / "insights" / "text_models")
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    metrics: dict[str, Any] = {
        "emotion_macro_f1_cedr": cedr["macro_f1"],
        "sentiment_macro_f1_goemotions": en_sentiment["macro_f1"],
        "texts_per_second": speed["texts_per_second"],
        "language_accuracy": float(np.mean([w == d for w, d in detected])),
        "language_accuracy_ru": by_language["ru"],
        "language_accuracy_en": by_language["en"],
        "language_accuracy_majority_baseline": float(
            np.mean([w == majority_language for w, _ in detected])),
        "emotion_macro_f1_cedr_majority_baseline": cedr["majority_macro_f1"],
        "emotion_macro_f1_cedr_by_source": cedr_by_source,
        "emotion_macro_f1_goemotions_6": en_emotion["macro_f1"],
        "emotion_macro_f1_goemotions_6_majority_baseline": en_emotion["majority_macro_f1"],
        "sentiment_accuracy_goemotions": en_sentiment["accuracy"],
        "sentiment_macro_f1_goemotions_majority_baseline": en_sentiment["majority_macro_f1"],
        "sentiment_accuracy_goemotions_majority_baseline": en_sentiment["majority_accuracy"],
        "sentiment_macro_f1_cedr_derived": cedr_sentiment["macro_f1"],
        "sentiment_accuracy_cedr_derived": cedr_sentiment["accuracy"],
        "sentiment_macro_f1_ru_goemotions_mt": mt_sentiment["macro_f1"],
        "sentiment_accuracy_ru_goemotions_mt": mt_sentiment["accuracy"],
        "sentiment_macro_f1_ru_goemotions_mt_majority_baseline": mt_sentiment[
            "majority_macro_f1"],
        "sentiment_macro_f1_ru_goemotions_mt_en_model": mt_zero_shot["macro_f1"],
        "emotion_macro_f1_ru_goemotions_mt_6": mt_emotion["macro_f1"],
        "sentiment_share_of_published_goemotions_4way": en_sentiment["macro_f1"]
        / PUBLISHED["goemotions_bert_macro_f1_sentiment_4way"],
        "emotion_share_of_published_goemotions_ekman": en_emotion["macro_f1"]
        / PUBLISHED["goemotions_bert_macro_f1_ekman"],
        "texts_per_cpu_second": speed["texts_per_cpu_second"],
        "texts_per_cpu_second_cold": speed["texts_per_cpu_second_cold"],
        "texts_per_second_cold": speed["texts_per_second_cold"],
        "load_average": list(os.getloadavg()),
        "tokenizer_texts_per_second": speed["tokenizer_texts_per_second"],
        "tokenizer_texts_per_cpu_second": speed["tokenizer_texts_per_cpu_second"],
        "texts_per_second_ratio_to_tokenizer": speed["texts_per_second_ratio_to_tokenizer"],
        "model_bytes": size,
        "published": PUBLISHED,
    }
    details = {"cedr": cedr, "goemotions_emotion": en_emotion,
               "goemotions_sentiment": en_sentiment, "ru_goemotions_mt_sentiment": mt_sentiment,
               "cedr_sentiment_derived": cedr_sentiment, "models": {
                   lang: {k: v for k, v in m.meta.items() if k != "data"}
                   for lang, m in models.items()}}
    path = write_results("text", metrics, details=details)
    for key, value in metrics.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
