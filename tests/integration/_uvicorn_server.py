"""What the live-server integration tests share: :func:`personify.testing.live_server.running`,
stores in a SQLite file of the test's directory, and an app served over them with an admin key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from personify.api import create_app
from personify.domain.keys import Scope
from personify.settings import Settings
from personify.storage.registry import Stores, open_stores
from personify.testing.live_server import running

__all__ = ["admin_server", "running", "sqlite_stores"]


@contextmanager
def sqlite_stores(directory: Path | str, name: str = "client.db") -> Iterator[Stores]:
    """Stores over ``directory/name``, closed when the block ends."""
    opened = open_stores(f"sqlite:///{directory}/{name}")
    try:
        yield opened
    finally:
        opened.close()


@contextmanager
def admin_server(stores: Stores, **app_options: Any) -> Iterator[tuple[str, str]]:
    """(base URL, admin secret) of a live server over ``stores`` (``app_options`` go to
    ``create_app``, e.g. ``clock``) until the block ends."""
    _key, secret = stores.keys.create("default", "client tests", [Scope.ADMIN])
    app = create_app(Settings(database_url="memory://"), stores=stores, **app_options)
    with running(app) as url:
        yield url, secret
