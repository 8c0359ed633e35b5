"""Tokenization for Russian and English item text: Unicode words, lower case, ``ё`` -> ``е``,
stop words of both languages, and a stemmer chosen per token by its script.

Stemming uses the Snowball stemmers of the ``snowballstemmer`` package (pure Python, the one
Sphinx uses); ``stem="suffix"`` is a dependency-free light suffix stripper and ``stem="none"``
keeps words whole. Example::

    Tokenizer()("Новые ёлочные игрушки and Christmas lights")
    # ['нов', 'елочн', 'игрушк', 'christma', 'light']
"""

from __future__ import annotations

import re
from typing import Any, Literal

from personify.domain.errors import InvalidInput, Unavailable

StemMode = Literal["snowball", "suffix", "none"]


def _words(text: str) -> list[str]:
    """Blank-separated words of a literal (keeps the long lists below readable)."""
    return text.split()


STOP_WORDS_EN: frozenset[str] = frozenset(
    _words(
        """
        a about above after again against all am an and any are as at be because been before
        being below between both but by can could did do does doing down during each few for
        from further had has have having he her here hers herself him himself his how i if in
        into is it its itself just me more most my myself no nor not now of off on once only or
        other our ours ourselves out over own same she should so some such than that the their
        theirs them themselves then there these they this those through to too under until up
        very was we were what when where which while who whom why will with would you your
        yours yourself yourselves
        """
    )
)
STOP_WORDS_RU: frozenset[str] = frozenset(
    _words(
        """
        а без более бы был была были было быть в вам вас весь во вот все всего всех вы где да
        даже для до его ее если есть еще же за здесь и из или им их к как ко когда кто ли либо
        между меня мне может мы на над надо наш не него нее нет ни них но ну о об однако он она
        они оно от очень по под при про с со так также такой там те тем то того тоже той только
        том ты у уже хотя чего чей чем что чтобы чье чья эта эти это этот я
        """
    )
)
STOP_WORDS: frozenset[str] = STOP_WORDS_EN | STOP_WORDS_RU

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CYRILLIC = re.compile(r"[а-я]")

_RU_SUFFIXES: tuple[str, ...] = tuple(
    sorted(
        _words(
            """
            ившись ывшись ающий яющий ующий ивший ывший ость ости ение ения ению ением ениях ами
            ями ого его ому ему ыми ими ешь ете ишь ите ают яют ует уют ать ять ить еть ая яя ое ее
            ые ие ый ий ой ом ем ах ях ов ев ей ам ям ию ия ью ья ую юю а я о е ы и у ю ь й
            """
        ),
        key=len,
        reverse=True,
    )
)
_EN_SUFFIXES = ("ational", "ations", "ation", "ness", "ment", "ings", "ing", "edly", "ies", "ied",
                "ers", "est", "ly", "ed", "es", "er", "s")


def _suffix_stem(word: str) -> str:
    """Strip the longest known suffix, keeping a stem of at least three letters."""
    suffixes = _RU_SUFFIXES if _CYRILLIC.search(word) else _EN_SUFFIXES
    for suffix in suffixes:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


class Tokenizer:
    """A picklable text -> tokens callable (usable as scikit-learn's ``tokenizer=``)."""

    def __init__(
        self, *, stem: StemMode = "snowball", stop_words: bool = True, min_length: int = 2
    ) -> None:
        if stem not in ("snowball", "suffix", "none"):
            raise InvalidInput(
                f"unknown stemming mode {stem!r}", field="stem", accepted="snowball, suffix, none"
            )
        self.stem = stem
        self.stop_words = stop_words
        self.min_length = min_length
        self._stemmers: dict[str, Any] = {}
        self._cache: dict[str, str] = {}
        if stem == "snowball":
            self._stemmer("english")  # fail early with a clear message

    def _stemmer(self, language: str) -> Any:
        stemmer = self._stemmers.get(language)
        if stemmer is None:
            try:
                import snowballstemmer
            except ImportError as exc:
                raise Unavailable(
                    "Snowball stemming needs the 'snowballstemmer' package",
                    field="stem",
                    accepted="install snowballstemmer, or use stem='suffix' / 'none'",
                ) from exc
            stemmer = self._stemmers[language] = snowballstemmer.stemmer(language)
        return stemmer

    def stem_word(self, word: str) -> str:
        """The stem of one lower-case word, by the script it is written in."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        if self.stem == "none":
            result = word
        elif self.stem == "suffix":
            result = _suffix_stem(word)
        else:
            language = "russian" if _CYRILLIC.search(word) else "english"
            result = self._stemmer(language).stemWord(word)
        if len(self._cache) < 200_000:
            self._cache[word] = result
        return result

    def __call__(self, text: str) -> list[str]:
        words = _WORD.findall(normalize(text))
        tokens = []
        for word in words:
            if len(word) < self.min_length or (self.stop_words and word in STOP_WORDS):
                continue
            if word.isdigit():
                continue
            tokens.append(self.stem_word(word))
        return tokens

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_stemmers"], state["_cache"] = {}, {}
        return state

    def __repr__(self) -> str:
        return (
            f"Tokenizer(stem={self.stem!r}, stop_words={self.stop_words}, "
            f"min_length={self.min_length})"
        )


def normalize(text: str) -> str:
    """Lower case with ``ё`` folded to ``е``."""
    return text.lower().replace("ё", "е")


def tokenize(text: str, *, stem: StemMode = "snowball") -> list[str]:
    """Tokens of ``text`` with the default settings (see ``Tokenizer``)."""
    return Tokenizer(stem=stem)(text)
