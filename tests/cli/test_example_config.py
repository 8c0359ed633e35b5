"""``personify.example.toml`` documents every setting and, as shipped, changes nothing."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from personify.settings import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "personify.example.toml"


def test_example_mentions_every_setting() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    named = set(re.findall(r"^#? ?([a-z_]+) = ", text, flags=re.MULTILINE))
    assert set(Settings.model_fields) <= named, set(Settings.model_fields) - named


def test_example_values_are_the_defaults() -> None:
    values = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    loaded = load_settings(EXAMPLE)
    defaults = Settings()
    for name in values:
        assert getattr(loaded, name) == getattr(defaults, name), name
