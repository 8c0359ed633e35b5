"""``personify messages send-campaign | results | worker | preview | journeys list | journeys
validate``.

The commands use the same messaging runtime as the API: the runtime is built from the settings
(:func:`personify.runtime.container.build_runtime`, no web application) and its ``messaging``
does the work. ``worker`` runs the outbox worker and the journey clock in the foreground until
stopped (Ctrl-C or SIGTERM); run it instead of ``messaging_enabled`` in the API.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from personify.cli.context import state_of
from personify.domain.errors import ConfigurationError, InvalidInput
from personify.domain.tenants import validate_tenant_id
from personify.messaging.journey_definitions import builtin_journeys, load_journey
from personify.runtime.container import build_runtime

app = typer.Typer(help="Personalized messages: campaigns, the worker, previews, journeys.",
                  no_args_is_help=True)
journeys_app = typer.Typer(help="List and validate journeys.", no_args_is_help=True)
app.add_typer(journeys_app, name="journeys")
console = Console(soft_wrap=True, highlight=False)

TenantOption = Annotated[
    str | None, typer.Option(help="Tenant (default: the default one).")
]


@contextmanager
def _runtime(ctx: typer.Context, *, need_secret: bool = False) -> Iterator[Any]:
    """The messaging runtime of a runtime built from the settings (its engine started: message
    blocks recommend through it; the messaging loop is the caller's); closed at the end."""
    state = state_of(ctx)
    settings = state.settings()
    if need_secret and settings.tracking_secret is None:
        raise ConfigurationError(
            "the worker signs tracking and unsubscribe links with the API's secret",
            field="tracking_secret",
            accepted="PERSONIFY_TRACKING_SECRET (the same value as the API's)",
        )
    runtime = build_runtime(settings, stores=state.stores(settings), clock=state.clock)
    try:
        runtime.start(messaging_loop=False)
        yield runtime.messaging
    finally:
        runtime.close()


def _tenant(ctx: typer.Context, tenant: str | None) -> str:
    return validate_tenant_id(tenant or state_of(ctx).settings().default_tenant)


def _read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}", field="file",
                           accepted="a readable YAML or JSON file") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: not a mapping", field="file", accepted="a YAML / JSON object")
    return data


@app.command("send-campaign")
def send_campaign(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Campaign YAML / JSON (name, template, "
                                              "audience, send_at, best_time).")],
    tenant: TenantOption = None,
) -> None:
    """Store a campaign and enqueue one message per person in its audience (idempotent)."""
    document = _read_document(file)
    tenant_id = _tenant(ctx, tenant)
    with _runtime(ctx) as runtime:
        campaign, created = runtime.send_campaign(tenant_id, document)
    console.print(f"Campaign [bold]{campaign.name}[/]: {created} messages enqueued "
                  f"(template {campaign.template}, from {campaign.send_at.isoformat()}).")
    if campaign.variants:
        names = ", ".join(v.name for v in campaign.variants)
        console.print(f"A/B/n test of {names} on {campaign.primary_metric}; results: "
                      f"personify messages results {campaign.name}")
    if campaign.winner is not None:
        console.print(f"{1 - campaign.winner.test_share:.0%} held back: the worker sends the "
                      f"winner to them from {campaign.test_end().isoformat()} "
                      f"(no significant winner: {campaign.winner.if_no_winner}).")


@app.command("results")
def results(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="The test campaign's name.")],
    tenant: TenantOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON document.")] = False,
) -> None:
    """A test campaign's analysis: per variant sent, opens, clicks, conversions, revenue per
    recipient and unsubscribes; the comparisons with the control; the winner decision."""
    tenant_id = _tenant(ctx, tenant)
    with _runtime(ctx) as runtime:
        *_, document = runtime.test_results(tenant_id, campaign)
    _print_results(document, as_json=as_json)


@app.command("journey-results")
def journey_results(
    ctx: typer.Context,
    journey: Annotated[str, typer.Argument(help="The journey's name.")],
    step: Annotated[str, typer.Argument(help="The id of its send step with variants.")],
    days: Annotated[float, typer.Option(min=0.001, help="Sends of the last days.")] = 90.0,
    tenant: TenantOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON document.")] = False,
) -> None:
    """A journey step's A/B/n test (its variants): the same analysis as a test campaign's."""
    tenant_id = _tenant(ctx, tenant)
    with _runtime(ctx) as runtime:
        document = runtime.journey_step_results(tenant_id, journey, step, days=days)
    _print_results(document, as_json=as_json)


def _print_results(document: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        console.print_json(data=document)
        return
    table = Table("variant", "sent", "open rate", "click rate", "conversion", "revenue/recipient",
                  "unsubscribes")
    for v in document["variants"]:
        table.add_row(
            v["name"] + (" (control)" if v["name"] == document["control"] else ""),
            str(v["sent"]), _rate(v["open_rate"]), _rate(v["click_rate"]),
            _rate(v["conversion_rate"]),
            "-" if v["revenue_per_recipient"] is None else f"{v['revenue_per_recipient']:.2f}",
            _rate(v["unsubscribe_rate"]),
        )
    console.print(table)
    console.print(f"[bold]Primary metric:[/] {document['primary_metric']}"
                  f"{'' if document['final'] else ' (not final)'}")
    console.print(f"[bold]Verdict:[/] {document['verdict']}", markup=True)
    decision = document.get("decision")
    if decision:
        if decision.get("status") == "decided":
            console.print(f"[bold]Winner:[/] {decision.get('winner') or 'none'} — "
                          f"{decision.get('reason')}; sent to {decision.get('sent_to_rest')} "
                          "held-back people")
        else:
            console.print(f"[bold]Winner:[/] not chosen yet (from {decision.get('decide_at')})")


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


@app.command("worker")
def worker(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option(help="Run one round and exit.")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between rounds.", min=0.05)] = 1.0,
) -> None:
    """Send due outbox messages and advance journeys until stopped (Ctrl-C / SIGTERM).
    ``personify worker messages`` does the same and can serve metrics (--metrics-port)."""
    with _runtime(ctx, need_secret=True) as runtime:
        if once:
            handled = runtime.run_once()
            console.print(f"Handled {handled} messages: {runtime.worker.stats}")
            return
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        runtime.poll_s = poll
        console.print("Messaging worker running; Ctrl-C to stop.")
        try:
            runtime.run_forever(stop)
        except KeyboardInterrupt:
            stop.set()
        finally:
            signal.signal(signal.SIGTERM, previous)
        console.print(f"Stopped: {runtime.worker.stats}")


@app.command("preview")
def preview(
    ctx: typer.Context,
    template: Annotated[str, typer.Argument(help="The stored template's name.")],
    user: Annotated[str, typer.Option("--user", help="Render for this user id.")],
    tenant: TenantOption = None,
    html: Annotated[bool, typer.Option(help="Print the HTML part too.")] = False,
) -> None:
    """Render a template for one person with their current recommendations (nothing is sent)."""
    tenant_id = _tenant(ctx, tenant)
    with _runtime(ctx) as runtime:
        rendered, items = runtime.preview(tenant_id, template, user)
    console.print(f"[bold]Subject:[/] {rendered.subject}")
    if rendered.preheader:
        console.print(f"[bold]Preheader:[/] {rendered.preheader}")
    console.print(f"[bold]Variant:[/] {rendered.language}/{rendered.tone}")
    console.print(f"[bold]Recommended:[/] {', '.join(i.item_id for i in items) or '-'}")
    console.print(rendered.text, markup=False)
    if html:
        console.print(rendered.html, markup=False)


@journeys_app.command("list")
def list_journeys(ctx: typer.Context, tenant: TenantOption = None) -> None:
    """The tenant's journeys (enabled or not) and the built-in examples."""
    tenant_id = _tenant(ctx, tenant)
    with _runtime(ctx) as runtime:
        stored = runtime.definitions.journeys(tenant_id)
    table = Table("journey", "enabled", "trigger", "updated")
    for entry in stored:
        trigger = entry.body.get("trigger", {})
        table.add_row(entry.name, "yes" if entry.enabled else "no",
                      ", ".join(f"{k}={v}" for k, v in trigger.items() if k != "where"),
                      f"{entry.updated_at:%Y-%m-%d %H:%M}")
    if stored:
        console.print(table)
    else:
        console.print(f"No journeys for tenant {tenant_id}.")
    console.print("Examples (enable with POST /v1/messaging/journeys/NAME/enable): "
                  + ", ".join(sorted(builtin_journeys())))


@journeys_app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="A journey YAML / JSON file.")],
) -> None:
    """Check a journey file; errors name the path inside it (``steps.1.duration``)."""
    if not file.is_file():
        raise InvalidInput(f"no file {file}", field="file", accepted="a journey YAML / JSON file")
    journey = load_journey(file)
    kinds = ", ".join(sorted({step.type for step in journey.steps}))
    console.print(f"[green]ok[/] {journey.name}: {len(journey.steps)} steps ({kinds}), "
                  f"exits on {', '.join(journey.exit_on) or 'nothing'}")
