"""Russian and English strings: complete catalogues, language choice, formatting, pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest

from personify.dashboard.i18n import LANG_COOKIE, Translator, catalogue, negotiate
from personify.dashboard.recommendation_preview import REPETITION, WEATHER
from personify.insights.text import EMOTIONS

from .conftest import TestClient

TEMPLATE_KEY = re.compile(r"""\bt\((["'])([a-z0-9_]+)\1""")
DYNAMIC_PREFIXES = {
    "nav_": ["overview", "users", "items", "models", "experiments", "messaging", "pages",
             "settings"],
    "consent_": ["granted", "denied", "withdrawn"],
    "device_": ["desktop", "mobile", "tablet"],
    "weather_": list(WEATHER),
    "state_source_": ["live", "history", "none", "not_personalized"],
    "repetition_": list(REPETITION),
    "status_": ["draft", "running", "stopped"],
    "scope_": ["ingest", "serve", "admin"],
    "purpose_": ["personalization", "profiling", "email_marketing", "push_marketing"],
    "flash_": ["promoted", "rolled_back"],
    "not_configured_": ["engine", "outbox"],
    "age_": ["days", "hours", "minutes", "now"],
    "sentiment_": ["negative", "neutral", "positive"],
    "emotion_": list(EMOTIONS),
    "feed_": ["people", "events", "groups", "projects", "content"],
}
CODE_KEYS = ["login_failed", "login_expired", "login_throttled", "login_not_admin",
             "erase_confirm_mismatch", "click_recorded", "click_rejected",
             "key_needs_name_and_scope", "key_not_found", "key_revoked"]


def used_keys() -> set[str]:
    root = resources.files("personify.dashboard")
    keys: set[str] = set()
    for folder in ("templates", "templates/panels", "pages"):
        for entry in root.joinpath(folder).iterdir():
            if entry.name.endswith((".html", ".py")):
                keys |= {m.group(2) for m in TEMPLATE_KEY.finditer(entry.read_text("utf-8"))}
    for entry in root.iterdir():
        if entry.name.endswith(".py"):
            keys |= {m.group(2) for m in TEMPLATE_KEY.finditer(entry.read_text("utf-8"))}
    keys |= {p + s for p, suffixes in DYNAMIC_PREFIXES.items() for s in suffixes}
    keys |= set(CODE_KEYS)
    return {k for k in keys if k not in DYNAMIC_PREFIXES}


def test_both_catalogues_hold_the_same_keys() -> None:
    assert set(catalogue("en")) == set(catalogue("ru"))


def test_every_used_key_is_translated() -> None:
    used = used_keys()
    assert len(used) > 200
    for language in ("en", "ru"):
        missing = used - set(catalogue(language))
        assert not missing, (language, sorted(missing))


def test_placeholders_match_between_languages() -> None:
    field = re.compile(r"\{(\w+)\}")
    for key, text in catalogue("en").items():
        assert set(field.findall(text)) == set(field.findall(catalogue("ru")[key])), key


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, None, "en"),
        (None, "ru-RU,ru;q=0.9,en;q=0.8", "ru"),
        (None, "de-DE,de;q=0.9,en;q=0.5,ru;q=0.4", "en"),
        (None, "fr, de", "en"),
        ("en", "ru-RU", "en"),
        ("xx", "ru", "ru"),
        (None, "en;q=0.2, ru;q=0.7", "ru"),
        (None, "ru;q=abc, en", "en"),
    ],
)
def test_language_negotiation(cookie: str | None, header: str | None, expected: str) -> None:
    assert negotiate(cookie, header) == expected


def test_formatting_follows_the_locale() -> None:
    en, ru = Translator("en"), Translator("ru")
    assert en.number(1234567) == "1,234,567"
    assert ru.number(1234567).replace("\xa0", " ") == "1 234 567"
    assert en.percent(0.1234, 1) == "12.3\xa0%" or en.percent(0.1234, 1) == "12.3 %"
    assert ru.percent(0.1234, 1).startswith("12,3")
    assert en.number(None) == "—"
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert en.age(now - timedelta(hours=3), now) == "3 h ago"
    assert ru.age(now - timedelta(days=2), now) == "2 дн. назад"
    assert Translator("de").language == "en"


def test_pages_follow_accept_language_and_the_switch(client: TestClient) -> None:
    russian = client.get("/dashboard/users", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert "Пользователи" in russian.text and '<html lang="ru">' in russian.text
    english = client.get("/dashboard/users", headers={"Accept-Language": "en-GB"})
    assert "Users" in english.text and '<html lang="en">' in english.text
    switched = client.get("/dashboard/lang/ru?next=/dashboard/items", follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/dashboard/items"
    assert f"{LANG_COOKIE}=ru" in switched.headers["set-cookie"]
    page = client.get("/dashboard/items", headers={"Accept-Language": "en"})
    assert "Товары" in page.text


def test_login_page_language_switch(anonymous: TestClient) -> None:
    response = anonymous.get("/dashboard/login?lang=ru", follow_redirects=False)
    assert response.status_code == 303
    assert "Вход в Personify" in anonymous.get("/dashboard/login").text
