"""Normal forms of Russian and English words: dictionary lemmas when the ``text`` extra is
installed, Snowball stems (a core dependency) otherwise.

- Russian: pymorphy3 with the OpenCorpora dictionaries of ``pymorphy3-dicts-ru`` (shipped in the
  wheel: nothing is downloaded), the first parse's normal form (``людьми`` -> ``человек``).
- English: simplemma's dictionary (shipped in its wheel; ``bought`` -> ``buy``).

:func:`backend` names what a language gets in this process; :func:`normal_forms` maps tokens
(lower-case words) to their normal forms. Keyword tables and text models record the backend they
were built with, so a process without the extra falls back to stems consistently (see
``personify.insights.text``). Both analysers are loaded once, on first use (about two seconds).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import cache, lru_cache
from typing import Any

import snowballstemmer

STEMMER = "snowball"
DICTIONARY = {"ru": "pymorphy3", "en": "simplemma"}
_SNOWBALL = {"ru": "russian", "en": "english"}
_stem_lock = threading.Lock()


@cache
def _snowball(language: str) -> Any:
    return snowballstemmer.stemmer(_SNOWBALL[language])


def stems(language: str, tokens: Sequence[str]) -> list[str]:
    """Snowball stems (``ru`` / ``en``)."""
    with _stem_lock:  # Snowball stemmers keep state between calls
        return list(_snowball(language).stemWords(list(tokens)))


@cache
def _dictionary(language: str) -> Callable[[str], str] | None:
    """The lemmatiser of ``language`` from the ``text`` extra, or None when it is absent."""
    try:
        if language == "ru":
            import pymorphy3

            morph = pymorphy3.MorphAnalyzer(lang="ru")

            def russian(word: str) -> str:
                parses = morph.parse(word)
                return str(parses[0].normal_form) if parses else word

            return russian
        if language == "en":
            import simplemma

            def english(word: str) -> str:
                return str(simplemma.lemmatize(word, lang="en")).lower()

            return english
    except ImportError:
        return None
    return None


def backend(language: str) -> str:
    """``pymorphy3`` (ru) / ``simplemma`` (en) when installed, else ``snowball``."""
    if language in DICTIONARY and _dictionary(language) is not None:
        return DICTIONARY[language]
    return STEMMER


@lru_cache(maxsize=200_000)
def _lemma(language: str, word: str) -> str:
    lemmatise = _dictionary(language)
    assert lemmatise is not None
    return lemmatise(word)


def normal_forms(language: str, tokens: Sequence[str], *, using: str | None = None,
                 ) -> list[str]:
    """The normal form of each token: by ``using`` (a backend name) when given and available,
    else by :func:`backend`; stems for any language or backend that is not available."""
    chosen = using or backend(language)
    if chosen == STEMMER or chosen != backend(language):
        return stems(language, tokens) if language in _SNOWBALL else list(tokens)
    return [_lemma(language, t) for t in tokens]
