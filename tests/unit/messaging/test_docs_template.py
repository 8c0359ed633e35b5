"""The template example of docs/messaging.md renders correctly for a person without a name,
in both of its languages (no "None", no subject starting with a comma)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from personify.domain.users import User
from personify.messaging.templates import MessageTemplate, preview

DOC = Path(__file__).resolve().parents[3] / "docs" / "messaging.md"


def doc_template() -> MessageTemplate:
    block = re.search(r"```yaml\n(name: cart_reminder.*?)```", DOC.read_text("utf-8"), re.S)
    assert block is not None
    return MessageTemplate.parse(yaml.safe_load(block.group(1)))


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("profile", [{}, {"name": None}, {"name": ""}])
def test_the_docs_example_greets_a_nameless_person(language: str, profile: dict) -> None:
    user = User(user_id="u1", profile={**profile, "language": language},
                properties={"tone": "informal" if language == "ru" else "formal"})
    subject = preview(doc_template(), user).subject
    assert "None" not in subject and not subject.startswith(","), subject
    named = User(user_id="u2", profile={"name": "Ann", "language": language},
                 properties={"tone": "informal" if language == "ru" else "formal"})
    assert preview(doc_template(), named).subject.startswith("Ann,")
