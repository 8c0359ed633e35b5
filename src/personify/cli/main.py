"""The ``personify`` command line (Typer + Rich): thin commands that parse arguments and call
services and jobs. Global options come first: ``personify --config FILE --database-url URL ...``.

One module per command group, registered below. To add a group (``train``, ``evaluate``,
``models``, ``privacy``, ``experiments``, ``ope``, ``simulate`` ...), create
``personify/cli/<group>.py`` holding ``app = typer.Typer(help=...)`` and add one line to
``GROUPS``; single top-level commands expose ``register(app)`` like :mod:`.server`.
User errors (``personify.domain.errors``) print as one red line and exit with code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from personify.cli import (
    bulk,
    db,
    evaluate,
    event_types,
    experiments,
    insights,
    keys,
    kpis,
    messaging,
    models,
    networking,
    ope,
    pages,
    privacy,
    server,
    setup,
    simulate,
    worker,
)
from personify.cli.context import CliState
from personify.cli.errors import ErrorHandlingGroup

app = typer.Typer(
    cls=ErrorHandlingGroup,
    name="personify",
    help="Personify: a self-hosted personalization engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

GROUPS: dict[str, typer.Typer] = {
    "keys": keys.app,
    "db": db.app,
    "experiments": experiments.app,
    "models": models.app,
    "privacy": privacy.app,
    "messages": messaging.app,
    "insights": insights.app,
    "networking": networking.app,
    "pages": pages.app,
    "event-types": event_types.app,
    "worker": worker.app,
    # "privacy": privacy.app, ...
}
COMMANDS = (setup, server, bulk, models, evaluate, ope, simulate, kpis, insights)
"""Modules adding top-level commands: init, status (setup); serve, demo (server); import,
export (bulk); train (models); ope; simulate; kpis; evaluate-predictions (insights)."""


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="TOML or YAML config file (see "
            "personify.example.toml); also PERSONIFY_CONFIG_FILE.",
            exists=False,
            dir_okay=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="sqlite:///path.db, postgresql://..., memory://; also PERSONIFY_DATABASE_URL.",
        ),
    ] = None,
) -> None:
    """Personify: a self-hosted personalization engine."""
    state = CliState(config_file=config, database_url=database_url)
    ctx.obj = state
    ctx.call_on_close(state.close)


for _module in COMMANDS:
    _module.register(app)
for _name, _group in GROUPS.items():
    app.add_typer(_group, name=_name)


if __name__ == "__main__":  # `python -m personify.cli.main` (the retrain scheduler)
    app()
