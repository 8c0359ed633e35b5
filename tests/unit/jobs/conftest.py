"""Fixtures for the bulk import / export tests: fresh stores over ``memory://``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from personify.storage.registry import Stores, open_stores


@pytest.fixture
def stores() -> Iterator[Stores]:
    """Empty stores (SQLite in memory, migrated), closed after the test."""
    with open_stores("memory://") as opened:
        yield opened


@pytest.fixture
def other_stores() -> Iterator[Stores]:
    """A second, independent set of empty stores (the target of a round trip)."""
    with open_stores("memory://") as opened:
        yield opened
