"""Fixtures of the privacy unit tests: in-memory stores and a privacy runtime over them in which
everyone trains (profiling opt-out)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from personify.privacy.runtime import PrivacyRuntime, open_runtime
from personify.storage.registry import Stores, open_stores


@pytest.fixture
def stores() -> Iterator[Stores]:
    with open_stores("memory://") as opened:
        yield opened


@pytest.fixture
def runtime(stores: Stores) -> PrivacyRuntime:
    return open_runtime(stores, demo=True)  # profiling opt-out: everyone trains
