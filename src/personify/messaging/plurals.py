"""Plural forms through Babel's CLDR rules: 1 товар, 2 товара, 5 товаров; 1 item, 2 items."""

from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError

CLDR_ORDER = ("zero", "one", "two", "few", "many", "other")


@lru_cache(maxsize=64)
def _categories(language: str) -> tuple[Locale, tuple[str, ...]]:
    try:
        locale = Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        locale = Locale.parse("en")
    tags = locale.plural_form.tags | {"other"}
    return locale, tuple(tag for tag in CLDR_ORDER if tag in tags)


def plural_category(count: float, language: str) -> str:
    """The CLDR plural category of ``count`` in ``language`` (``one``, ``few``, ``many`` ...)."""
    locale, _ = _categories(language)
    return str(locale.plural_form(count))


def plural(count: float, language: str, *forms: str) -> str:
    """Pick the word form for ``count``; ``forms`` follow the language's CLDR categories in order
    (Russian: one, few, many[, other]; English: one, other). Missing forms fall back to the last."""
    if not forms:
        return ""
    _, categories = _categories(language)
    category = plural_category(count, language)
    index = categories.index(category) if category in categories else len(forms) - 1
    return forms[min(index, len(forms) - 1)]
