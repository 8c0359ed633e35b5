"""Russian / English tokenization: normalisation, stop words, stemming per script, pickling."""

from __future__ import annotations

import pickle

import pytest

from personify.data.text import STOP_WORDS, Tokenizer, normalize, tokenize
from personify.domain.errors import InvalidInput


def test_yo_is_folded_and_case_lowered() -> None:
    assert normalize("ЁЛКА Ёж") == "елка еж"
    assert tokenize("Ёлки") == tokenize("елки")


def test_stop_words_of_both_languages_are_dropped() -> None:
    tokens = Tokenizer(stem="none")("The книга и the lamp для дома")
    assert tokens == ["книга", "lamp", "дома"]
    assert {"the", "и", "для"} <= STOP_WORDS


def test_inflected_forms_share_a_stem() -> None:
    tok = Tokenizer()
    assert tok("книги")[0] == tok("книгами")[0] == tok("книга")[0]
    assert tok("running")[0] == tok("runs")[0]
    suffix = Tokenizer(stem="suffix")
    assert suffix("книгами") == suffix("книги")
    assert suffix("lights") == suffix("light")


def test_punctuation_digits_and_short_tokens() -> None:
    assert Tokenizer(stem="none")("T-LIGHT holder, 12 pcs; a_b x") == ["light", "holder", "pcs"]


def test_mixed_script_text_stems_each_word_in_its_language() -> None:
    tokens = Tokenizer()("Красные candles")
    assert tokens == ["красн", "candl"]


def test_tokenizer_pickles_and_rejects_unknown_mode() -> None:
    tok = Tokenizer(stem="snowball")
    tok("warm cache")
    clone = pickle.loads(pickle.dumps(tok))
    assert clone("running") == tok("running")
    with pytest.raises(InvalidInput) as err:
        Tokenizer(stem="porter")  # type: ignore[arg-type]
    assert err.value.field == "stem"
