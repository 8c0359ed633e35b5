"""What the global options (``--config``, ``--database-url``) give every command: settings and
the stores, opened once per invocation and closed at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from personify.settings import Settings, load_settings
from personify.storage.registry import Stores, open_stores


@dataclass
class CliState:
    """The global options of one ``personify`` invocation."""

    config_file: Path | None = None
    database_url: str | None = None
    clock: Callable[[], datetime] | None = None
    """The clock of time-of-day rules (quiet hours, caps, journeys); the wall clock when None."""
    _stores: list[Stores] = field(default_factory=list)

    def settings(self, **overrides: Any) -> Settings:
        """Settings from the environment and the config file; command-line options win."""
        if self.database_url is not None:
            overrides.setdefault("database_url", self.database_url)
        return load_settings(self.config_file, **overrides)

    def stores(self, settings: Settings | None = None) -> Stores:
        """The stores of the configured database (migrated), closed when the command ends."""
        settings = settings or self.settings()
        stores = open_stores(settings.database_url)
        self._stores.append(stores)
        return stores

    def close(self) -> None:
        while self._stores:
            self._stores.pop().close()


def state_of(ctx: typer.Context) -> CliState:
    """The :class:`CliState` of this invocation (created by the main callback)."""
    state = ctx.find_object(CliState)
    if state is None:  # a sub-app invoked on its own, e.g. in a test
        state = ctx.ensure_object(CliState)
        ctx.call_on_close(state.close)
    return state
