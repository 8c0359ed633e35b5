"""Fixtures for the command-line tests: a clean ``PERSONIFY_*`` environment and a runner."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from personify.cli.main import app
from personify.domain.events import Event
from personify.storage.registry import open_stores


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No setting leaks in from the developer's shell; relative paths land in ``tmp_path``."""
    for name in list(os.environ):
        if name.startswith("PERSONIFY_") and not name.startswith("PERSONIFY_TEST"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    # Rich sizes tables to the terminal; a runner without one (pytest-xdist workers) must not
    # change what the assertions read.
    monkeypatch.setenv("COLUMNS", os.environ.get("COLUMNS", "120"))
    yield


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def personify(database_url: str) -> Callable[..., Result]:
    """Run ``personify --database-url <tmp db> ARGS``."""
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, ["--database-url", database_url, *args])

    return run


@pytest.fixture
def trainable_shop(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events of 20 people who may be profiled (so they train): 100 views of 25 items in the
    tenant ``default`` (the training commands' tests)."""
    monkeypatch.setenv("PERSONIFY_CONSENT_DEFAULTS", '{"profiling": "opt-out"}')
    now = datetime.now(UTC)
    events = [
        Event(event_id=f"e{u}-{j}", type="view", user_id=f"u{u}", item_id=f"i{(u * 7 + j) % 25}",
              timestamp=now - timedelta(hours=u + j))
        for u in range(20) for j in range(5)
    ]
    with open_stores(database_url) as stores:
        stores.events.append("default", events)
