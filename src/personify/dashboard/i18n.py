"""Interface strings in Russian and English, the language choice, and locale-aware formatting.

Strings live in ``locales/<language>.json`` (flat ``key -> text`` with ``{name}`` placeholders);
both catalogues hold the same keys (a test checks it). The language comes from the
``personify_lang`` cookie (the switch), else the browser's ``Accept-Language``, else English.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from babel.dates import format_datetime
from babel.numbers import format_decimal, format_percent

LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"
LANG_COOKIE = "personify_lang"


@cache
def catalogue(language: str) -> dict[str, str]:
    """Every string of ``language`` (read once)."""
    text = resources.files("personify.dashboard").joinpath(f"locales/{language}.json").read_text(
        encoding="utf-8"
    )
    data: dict[str, str] = json.loads(text)
    return data


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The interface language: the cookie if valid, else the best of ``Accept-Language``."""
    if cookie in LANGUAGES:
        return cookie
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGUAGES:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        q -= position * 1e-6  # earlier wins a tie
        if q > best_q:
            best, best_q = primary, q
    return best


class Translator:
    """``t(key, **params)`` in one language, plus number, percent and date formatting."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self._strings = catalogue(self.language)
        self._fallback = catalogue(DEFAULT_LANGUAGE)

    def __call__(self, key: str, **params: Any) -> str:
        text = self._strings.get(key) or self._fallback.get(key) or key
        if params:
            try:
                return text.format(**params)
            except (KeyError, IndexError, ValueError):
                return text
        return text

    def number(self, value: float | int | None, digits: int = 0) -> str:
        if value is None:
            return "—"
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return str(format_decimal(value, format=pattern, locale=self.language))

    def percent(self, value: float | None, digits: int = 1) -> str:
        if value is None:
            return "—"
        pattern = "#,##0" + ("." + "0" * digits if digits else "") + " %"
        return str(format_percent(value, format=pattern, locale=self.language))

    def timestamp(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return str(format_datetime(value, "yyyy-MM-dd HH:mm", tzinfo=UTC, locale=self.language))

    def age(self, value: datetime | None, now: datetime | None = None) -> str:
        """How long ago, in the largest sensible unit ("3 h", "2 d")."""
        if value is None:
            return "—"
        seconds = ((now or datetime.now(UTC)) - value).total_seconds()
        for unit, size in (("days", 86_400), ("hours", 3_600), ("minutes", 60)):
            if seconds >= size:
                return self(f"age_{unit}", n=int(seconds // size))
        return self("age_now")
