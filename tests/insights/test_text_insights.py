"""The shipped text models: language, sentiment and emotions of known sentences in both
languages, keywords, bad input, the person's text insights and their rule fields; the artefacts
load without scikit-learn."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from personify.domain.events import Event
from personify.insights.rules import evaluate, parse_text
from personify.insights.text import (
    EMOTIONS,
    MAX_ANALYSED_CHARS,
    TextAnalyzer,
    clean,
    default_analyzer,
    features,
    hashed,
    hashed_text,
)
from personify.insights.text_profile import text_facts, text_insights

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def analyzer() -> TextAnalyzer:
    return default_analyzer()


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Спасибо, всё пришло вовремя и в хорошем состоянии!", "ru"),
        ("спасибо", "ru"),
        ("Thanks, the parcel arrived on time and in good shape!", "en"),
        ("this is the worst thing I have ever bought", "en"),
        ("Guten Tag, wie geht es dir heute? Ich bin sehr zufrieden.", "other"),
        ("Je suis très content de ce produit, merci beaucoup.", "other"),
        ("Дякую, все прийшло вчасно і в гарному стані!", "other"),  # Ukrainian
        ("这个产品非常好", "other"),
        ("12345 !!! :) ???", None),
        ("", None),
    ],
)
def test_language_of_known_texts(analyzer: TextAnalyzer, text: str, language: str | None,
                                 ) -> None:
    assert analyzer.language(text) == language


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I love this, thank you so much, it is wonderful!", "positive"),
        ("This is terrible, I hate it, worst purchase ever.", "negative"),
        ("Огромное спасибо, я очень рада, всё замечательно!", "positive"),
        ("Ужасный сервис, меня обманули, я в бешенстве и очень расстроен.", "negative"),
    ],
)
def test_sentiment_of_known_sentences(analyzer: TextAnalyzer, text: str, expected: str) -> None:
    analysis = analyzer.analyse(text)
    assert analysis.scores is not None
    sentiment = analysis.scores.sentiment
    assert max(sentiment, key=lambda k: sentiment[k]) == expected, sentiment
    assert abs(sum(sentiment.values()) - 1.0) < 1e-3


@pytest.mark.parametrize(
    ("text", "emotion"),
    [
        ("I am so scared and afraid of what will happen tomorrow.", "fear"),
        ("I'm so sad, I miss her and I cried all night.", "sadness"),
        ("Мне очень страшно, я боюсь за своих детей.", "fear"),
        ("Мне так грустно и одиноко, хочется плакать.", "sadness"),
    ],
)
def test_emotion_of_known_sentences(analyzer: TextAnalyzer, text: str, emotion: str) -> None:
    analysis = analyzer.analyse(text)
    assert analysis.scores is not None and analysis.language is not None
    emotions = analysis.scores.emotions
    assert set(emotions) == set(EMOTIONS)
    assert emotion in analyzer.models()[1][analysis.language].predict_emotions(text), emotions


def test_markup_enormous_and_odd_input_is_handled(analyzer: TextAnalyzer) -> None:
    marked = "<p><b>Ужасно!</b> &nbsp; https://example.com/x?y=1 [NAME] всё сломалось</p>"
    assert "<" not in clean(marked) and "https" not in clean(marked)
    assert analyzer.language(marked) == "ru"
    enormous = "great product " * 10_000
    assert len(clean(enormous)) <= MAX_ANALYSED_CHARS
    assert analyzer.analyse(enormous).language == "en"
    for odd in ("", "   ", "\n\n", "🙂🙂🙂", "<script></script>", "a" * 3000):
        analysis = analyzer.analyse(odd)  # no error, whatever comes in
        assert analysis.language in (None, "en", "other")


def _event(i: int, text: str | None, days: int = 1) -> Event:
    return Event(event_id=f"e{i}", type="review" if text else "view", user_id="ann",
                 item_id="x", text=text, timestamp=NOW - timedelta(days=days))


def test_person_text_insights_and_rule_fields(analyzer: TextAnalyzer) -> None:
    events = [
        _event(1, "Доставка опять опоздала, ужасный сервис, я очень зла.", days=2),
        _event(2, "Ужасно, курьер нагрубил, посылка сломана. Верните деньги!", days=3),
        _event(3, "Terrible delivery, the courier was rude and the parcel was broken.", days=4),
        _event(4, None),
    ]
    insights = text_insights(events, analyzer, NOW)
    assert insights is not None
    assert insights.texts == 3 and insights.language == "ru"
    assert {s.key for s in insights.languages} == {"ru", "en"}
    assert insights.sentiment is not None and insights.sentiment.negative_share > 0.5
    assert insights.sentiment.last == "negative"
    assert "курьер" in {k.keyword for k in insights.keywords}
    kw = next(k for k in insights.keywords if k.keyword == "курьер")
    assert kw.event_ids == ["e2"]
    assert insights.reason.en and insights.reason.ru and "CEDR" in insights.attribution
    facts = text_facts(insights)
    never = lambda _: False  # noqa: E731
    for text, member in [
        ('sentiment.negative_share > 0.5', True),
        ('language = "ru"', True),
        ('languages has "en"', True),
        ('sentiment.positive_share > 0.5', False),
        ('language = "en"', False),
        ('keywords has "курьер" and texts >= 3', True),
    ]:
        assert evaluate(parse_text(text), facts, never) is member, text
    assert text_insights([_event(5, None)], analyzer, NOW) is None
    assert text_facts(None)["texts"] == 0
    assert evaluate(parse_text("sentiment.negative_share > 0.5"), text_facts(None),
                    never) is False


def test_serving_scores_without_scikit_learn() -> None:
    code = (
        "import sys\n"
        "from personify.insights.text import default_analyzer\n"
        "a = default_analyzer().analyse('Спасибо, всё отлично!')\n"
        "assert a.scores is not None\n"
        "assert not [m for m in sys.modules if m.startswith('sklearn')], 'sklearn imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_shipped_artefacts_are_small_and_licensed() -> None:
    folder = Path(__file__).resolve().parents[2] / "src/personify/insights/text_models"
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert total < 30 * 1024 * 1024
    names = {p.name for p in folder.iterdir()}
    assert {"apache-2.0.LICENSE", "ru-goemotions-MIT.LICENSE", "README.md"} <= names
    readme = (folder / "README.md").read_text()
    assert "CEDR" in readme and "GoEmotions" in readme and "Sboev" in readme


@pytest.mark.parametrize("text", [
    "Ужасный сервис!!! курьер опоздал :( ((", "Great, great, GREAT product :) thanks",
    "<b>mixed</b> текст and words", "", "one",
])
def test_serving_features_equal_training_features(text: str) -> None:
    idx, tf = hashed(features(text))
    fast_idx, fast_tf = hashed_text(text)
    assert dict(zip(idx.tolist(), tf.tolist(), strict=True)) == dict(
        zip(fast_idx.tolist(), fast_tf.tolist(), strict=True))


@pytest.mark.datasets
def test_shipped_models_beat_the_majority_class_on_the_test_splits(
    analyzer: TextAnalyzer, datasets_dir: Path,
) -> None:
    """A slice of each official test split (the full figures: benchmarks/text_insights.py)."""
    import numpy as np

    from personify.jobs.text_models import (
        decide,
        emotion_truth,
        load_corpora,
        macro_f1,
        sentiment_macro_f1,
    )

    corpora = load_corpora(datasets_dir)
    _, models, _ = analyzer.models()
    cedr = [e for e in corpora.cedr if e.split == "test"][:400]
    probabilities = np.array([1 / (1 + np.exp(-models["ru"].logits(e.text)[:6])) for e in cedr])
    truth = emotion_truth([e.emotions for e in cedr])
    majority = np.zeros_like(truth)
    majority[:, int(np.argmax(truth.sum(axis=0)))] = True
    ours = macro_f1(truth, decide(probabilities, models["ru"].thresholds))
    assert ours > 0.5 > macro_f1(truth, majority)
    en = [e for e in corpora.en if e.split == "test" and e.sentiment is not None][:400]
    labels = ("negative", "neutral", "positive")
    predicted = [labels[int(np.argmax(models["en"].logits(e.text)[6:]))] for e in en]
    assert sentiment_macro_f1([e.sentiment for e in en], predicted) > 0.55
    detected = [analyzer.language(e.text) for e in cedr[:200] + en[:200]]
    assert detected.count("ru") >= 190 and detected.count("en") >= 190
