"""Normal forms of words: dictionary lemmas (pymorphy3 for Russian, simplemma for English, the
``text`` extra) and the Snowball fallback; keywords grouped by lemma when the tables and the
process agree, by stem otherwise; the ``n:`` text features equal on the training and serving
paths."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from personify.insights import lemmas
from personify.insights.lemmas import STEMMER, backend, normal_forms, stems
from personify.insights.text import KeywordModel, features, hashed, hashed_text, keywords

pytest.importorskip("pymorphy3")
pytest.importorskip("simplemma")


@pytest.fixture
def without_dictionaries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A process without the ``text`` extra."""
    monkeypatch.setattr(lemmas, "_dictionary", lambda language: None)
    lemmas._lemma.cache_clear()
    yield
    lemmas._lemma.cache_clear()


def test_dictionary_lemmas_of_both_languages() -> None:
    assert backend("ru") == "pymorphy3" and backend("en") == "simplemma"
    assert normal_forms("ru", ["людьми", "кошки", "бежали", "рекомендую"]) == [
        "человек", "кошка", "бежать", "рекомендовать"]
    assert normal_forms("en", ["bought", "cats", "was", "running"]) == [
        "buy", "cat", "be", "run"]
    assert backend("de") == STEMMER and normal_forms("de", ["Häuser"]) == ["Häuser"]


def test_fallback_is_the_snowball_stemmer(without_dictionaries: None) -> None:
    assert backend("ru") == STEMMER == backend("en")
    words = ["кошки", "кошкам", "bought", "buying"]
    assert normal_forms("ru", words[:2]) == stems("ru", words[:2])
    # a backend named by a model but not installed here also falls back to stems
    assert normal_forms("en", words[2:], using="simplemma") == stems("en", words[2:])


def _model(normal: dict[str, tuple[str, dict[str, int]]]) -> KeywordModel:
    return KeywordModel(stopwords={"ru": frozenset(), "en": frozenset()},
                        document_frequency={"ru": {"кошк": 5}, "en": {}},
                        documents={"ru": 100, "en": 100}, normal_frequency=normal)


def test_keywords_group_by_lemma_when_the_tables_have_this_backend() -> None:
    text = [("ru", "людьми люди человек кошки")]
    by_lemma = keywords(text, _model({"ru": ("pymorphy3", {"кошка": 90})}))
    assert by_lemma[0].stem == "человек" and by_lemma[0].count == 3
    assert {k.stem: k.count for k in by_lemma} == {"человек": 3, "кошка": 1}
    # tables built with another backend: stems, which cannot join people with people
    by_stem = keywords(text, _model({"ru": ("other", {"кошка": 90})}))
    assert {k.stem for k in by_stem} == set(stems("ru", ["людьми", "люди", "человек", "кошки"]))


def test_keywords_fall_back_to_stems_without_the_extra(without_dictionaries: None) -> None:
    found = keywords([("ru", "кошки кошкам кошка")], _model({"ru": ("pymorphy3", {})}))
    assert [(k.stem, k.count, k.keyword) for k in found] == [("кошк", 3, "кошки")]


def test_normal_form_features_equal_on_training_and_serving_paths() -> None:
    def normal(ws: list[str]) -> list[str]:
        return normal_forms("ru", ws)

    for text in ["Люди любят кошек, а кошки любят людей!", "", "<b>разметка</b> :)"]:
        idx, tf = hashed(features(text, normal=normal))
        fast_idx, fast_tf = hashed_text(text, normal=normal)
        assert dict(zip(idx.tolist(), tf.tolist(), strict=True)) == dict(
            zip(fast_idx.tolist(), fast_tf.tolist(), strict=True))
    assert "n:человек" in features("людьми", normal=normal)
    assert not any(f.startswith("n:") for f in features("людьми"))


def test_a_model_trained_with_lemmas_reads_them_when_serving(tmp_path: object,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             ) -> None:
    from pathlib import Path

    pytest.importorskip("sklearn")
    from personify.insights.text import EMOTIONS, TextModel
    from personify.jobs.text_models import Example, train_language

    happy = ["радуюсь", "рада", "радовались", "радостно"]
    sad = ["грущу", "грустила", "грустно", "грустим"]
    examples = [Example(f"{w} сегодня {k}", {"joy"} if w in happy else {"sadness"},
                        "positive" if w in happy else "negative", "train", id=f"{w}{k}")
                for k in range(3) for w in happy + sad]
    others = {"surprise": "удивился", "fear": "боюсь", "anger": "злюсь", "neutral": "пишу"}
    examples += [Example(f"{w} {k}", {e}, "neutral", "train", id=f"{w}{k}")
                 for k in range(3) for e, w in others.items()]
    run = train_language(examples, examples, {"language": "ru"}, log=lambda _: None, refit=False,
                         lemmas=True)
    assert run.model.meta["normal_forms"] == "pymorphy3" and run.model.normal is not None
    path = Path(str(tmp_path)) / "m.npz"
    run.model.save(path)
    loaded = TextModel.load(path)
    # "радовалась" was never seen; its lemma "радоваться" was (from "радовались")
    with_lemmas = loaded.logits("радовалась")
    assert loaded.normal is not None
    plain = train_language(examples, examples, {"language": "ru"}, log=lambda _: None,
                           refit=False)
    assert "normal_forms" not in plain.model.meta and plain.model.normal is None
    joy = EMOTIONS.index("joy")
    assert with_lemmas[joy] > loaded.bias[joy]
    # without the extra the model still loads and scores (its lemma features become stems)
    monkeypatch.setattr(lemmas, "_dictionary", lambda language: None)
    assert TextModel.load(path).logits("радовалась").shape == with_lemmas.shape
