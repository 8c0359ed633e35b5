"""``personify worker messages | retrain``: the background processes of a multi-node deployment,
each run in the foreground until Ctrl-C / SIGTERM, as many as wanted on any machine sharing the
database, Redis and the model directory (docs/deployment.md).

* ``messages``: the outbox worker and the journey clock (``personify messages worker`` with the
  same options). Several workers claim disjoint batches (``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL), so no message is sent twice.
* ``retrain``: retrains the default tenant every ``--interval-minutes`` with new events, or after
  ``--every-events`` new events (it polls the event store's count), in a child process
  (``personify train``). One retrain at a time across every process sharing the database (a
  PostgreSQL advisory lock) or the model directory (a file lock): a due retrain whose lock is held
  elsewhere is skipped here. Servers swap the promoted version in within
  ``model_refresh_seconds``.

``--metrics-port`` serves this process's Prometheus metrics on ``http://HOST:PORT/metrics``
(127.0.0.1 unless ``--metrics-host`` says otherwise: a separate port, not public by default).
Logs follow ``log_format`` (JSON lines by default).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from personify.cli.context import CliState, state_of
from personify.domain.errors import ConfigurationError
from personify.runtime.container import build_runtime
from personify.runtime.engine import retrain_scheduler
from personify.runtime.logs import configure_logging
from personify.runtime.metrics import Metrics, start_metrics_server
from personify.settings import Settings

app = typer.Typer(help="Background workers: messages (outbox, journeys) and retrain.",
                  no_args_is_help=True)
console = Console(soft_wrap=True, highlight=False)

EXIT_LOCKED = 3
"""``worker retrain --once`` exit code when another process holds the retrain lock."""

MetricsPort = Annotated[
    int | None,
    typer.Option(help="Serve this process's Prometheus metrics on this port (/metrics).",
                 min=1, max=65535),
]
MetricsHost = Annotated[
    str, typer.Option(help="Interface of --metrics-port (keep it private).")
]


@contextmanager
def _stop_on_sigterm() -> Iterator[threading.Event]:
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        yield stop
    except KeyboardInterrupt:
        stop.set()
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _metrics_server(metrics: Metrics, host: str, port: int | None) -> Iterator[None]:
    server: Any = start_metrics_server(metrics, host, port) if port else None
    try:
        yield
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


def _export_environment(state: CliState, settings: Settings) -> None:
    """The child ``personify train`` reads the same database and model directory."""
    if state.config_file is not None:
        os.environ["PERSONIFY_CONFIG_FILE"] = str(state.config_file)
    os.environ["PERSONIFY_DATABASE_URL"] = settings.database_url
    os.environ["PERSONIFY_MODEL_DIR"] = str(settings.model_dir)


@app.command("messages")
def messages(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option(help="Run one round and exit.")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between rounds.", min=0.05)] = 1.0,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Send due outbox messages and advance journeys until stopped (Ctrl-C / SIGTERM)."""
    state = state_of(ctx)
    settings = state.settings()
    configure_logging(settings.log_format, settings.log_level)
    if settings.tracking_secret is None:
        raise ConfigurationError(
            "the worker signs tracking and unsubscribe links with the API's secret",
            field="tracking_secret",
            accepted="PERSONIFY_TRACKING_SECRET (the same value as the API's)",
        )
    runtime = build_runtime(settings, stores=state.stores(settings), clock=state.clock)
    try:
        runtime.start(messaging_loop=False)
        messaging = runtime.messaging
        with _metrics_server(runtime.metrics, metrics_host, metrics_port):
            if once:
                handled = messaging.run_once()
                console.print(f"Handled {handled} messages: {messaging.worker.stats}")
                return
            messaging.poll_s = poll
            console.print("Messaging worker running; Ctrl-C to stop.")
            with _stop_on_sigterm() as stop:
                messaging.run_forever(stop)
            console.print(f"Stopped: {messaging.worker.stats}")
    finally:
        runtime.close()


@app.command("retrain")
def retrain(
    ctx: typer.Context,
    interval_minutes: Annotated[
        float | None,
        typer.Option(help="Retrain when this many minutes passed with new events (default: "
                     "retrain_interval_minutes, else 10).", min=0.01),
    ] = None,
    every_events: Annotated[
        int | None,
        typer.Option(help="Retrain after this many new events (default: retrain_every_events).",
                     min=1),
    ] = None,
    poll: Annotated[float, typer.Option(help="Seconds between checks.", min=0.1)] = 5.0,
    once: Annotated[
        bool, typer.Option(help=f"Retrain now (under the lock) and exit; exit code "
                           f"{EXIT_LOCKED} when another process holds the lock.")
    ] = False,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Retrain the default tenant in the background, one retrain at a time across machines."""
    state = state_of(ctx)
    overrides: dict[str, Any] = {}
    if every_events is not None:
        overrides["retrain_every_events"] = every_events
    settings = state.settings(**overrides)
    configure_logging(settings.log_format, settings.log_level)
    stores = state.stores(settings)
    _export_environment(state, settings)
    metrics = Metrics()
    scheduler = retrain_scheduler(settings, stores, metrics, interval_minutes=interval_minutes)
    scheduler.poll_s = poll
    tenant = settings.default_tenant
    with _metrics_server(metrics, metrics_host, metrics_port):
        if once:
            scheduler.request(tenant)
            scheduler.tick()
            if scheduler.skipped:
                console.print(f"Another process is retraining {tenant}; nothing done.")
                raise typer.Exit(EXIT_LOCKED)
            code = scheduler.runs[-1][1] if scheduler.runs else 1
            console.print(f"Retrained {tenant}: exit code {code}.")
            raise typer.Exit(code)
        console.print(f"Retrain worker for {tenant} running ({scheduler.interval_s / 60:g} "
                      f"minutes or {scheduler.every_events} events); Ctrl-C to stop.")
        seen = stores.events.count(tenant)
        with _stop_on_sigterm() as stop:
            while not stop.is_set():
                now = stores.events.count(tenant)
                scheduler.add_pending(tenant, now - seen)
                seen = now
                scheduler.tick()
                stop.wait(poll)
        console.print(f"Stopped after {len(scheduler.runs)} retrains "
                      f"({len(scheduler.skipped)} left to another process).")
