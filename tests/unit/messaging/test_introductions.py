"""Networking introductions in ru / en and formal / informal tone."""

from __future__ import annotations

import pytest

from personify.domain.users import User
from personify.messaging.introductions import shared_traits, suggest_introduction

ANNA = User(
    user_id="a",
    profile={
        "name": "Anna",
        "interests": ["Chess", "ML", "Hiking"],
        "skills": ["Python"],
        "goals": ["find a cofounder"],
    },
)


def _recipient(language: str, tone: str) -> User:
    return User(
        user_id="b",
        profile={
            "name": "Boris",
            "language": language,
            "interests": ["chess", "ml"],
            "skills": ["Go"],
            "goals": ["Find a cofounder"],
        },
        properties={"tone": tone},
    )


def test_shared_traits_are_case_insensitive() -> None:
    assert shared_traits(ANNA, _recipient("en", "formal")) == {
        "interests": ["Chess", "ML"],
        "skills": [],
        "goals": ["find a cofounder"],
    }


@pytest.mark.parametrize(
    ("language", "tone", "expected"),
    [
        ("en", "formal", "Dear Boris, may I introduce Anna? You share an interest in Chess and ML"),
        ("en", "informal", "Hi Boris! Meet Anna: you're both into Chess and ML"),
        (
            "ru",
            "formal",
            "Здравствуйте, Boris! Рекомендуем вам познакомиться: Anna. У вас общие"
            " интересы: Chess и ML",
        ),
        ("ru", "informal", "Привет, Boris! Познакомься: Anna. Вам обоим интересно Chess и ML"),
    ],
)
def test_language_and_tone(language: str, tone: str, expected: str) -> None:
    text = suggest_introduction(ANNA, _recipient(language, tone))
    assert text.startswith(expected)
    assert "cofounder" in text and "Python" not in text


def test_explicit_shared_and_nothing_shared() -> None:
    text = suggest_introduction(ANNA, _recipient("en", "formal"), {"skills": ["SQL"]})
    assert "SQL" in text and "Chess" not in text
    empty = suggest_introduction(ANNA, _recipient("ru", "informal"), {})
    assert empty == "Привет, Boris! Познакомься: Anna. Думаю, вы найдёте общий язык!"
