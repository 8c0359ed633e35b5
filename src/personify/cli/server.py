"""``personify serve`` (the API under uvicorn) and ``personify demo`` (the bundled sample in an
embedded SQLite file, served on 127.0.0.1 in demo mode)."""

from __future__ import annotations

import os
import secrets
import threading
import webbrowser
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console

from personify.cli.asgi import build_app
from personify.cli.context import CliState, state_of
from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.errors import InvalidInput
from personify.jobs.network_demo import ATTRIBUTION_SHORT as NETWORK_ATTRIBUTION
from personify.jobs.network_demo import load_network_demo
from personify.jobs.networking import train_networking
from personify.jobs.record_sinks import default_ingestor
from personify.jobs.sample_data import (
    SAMPLE_ATTRIBUTION,
    SampleCounts,
    load_sample,
    sample_counts,
    sample_loaded,
)
from personify.jobs.training import TrainingConfig, train_tenant
from personify.privacy.runtime import open_runtime
from personify.runtime.logs import logging_config
from personify.settings import DEMO_ADMIN_KEY, DEMO_TRACKING_SECRET, Settings
from personify.storage.registry import Stores

console = Console(soft_wrap=True, highlight=False)
DEMO_DB = Path("var/demo.db")
FACTORY = "personify.cli.asgi:app_from_environment"
WORKER_STARTUP_SECONDS = 60
"""How long a worker may take to import and build the app before uvicorn restarts it (the
default 5 s is too short on a busy 2-core machine)."""


def _export_environment(state: CliState, settings: Settings) -> None:
    """Hand the resolved options to uvicorn worker processes through ``PERSONIFY_*``."""
    if state.config_file is not None:
        os.environ["PERSONIFY_CONFIG_FILE"] = str(state.config_file)
    os.environ["PERSONIFY_DATABASE_URL"] = settings.database_url
    if settings.demo:
        os.environ["PERSONIFY_DEMO"] = "true"


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Interface (default: settings, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings, 8000).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.", min=1)] = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Run the API server.

    Outside demo mode it refuses to start until an API key exists (`personify keys create`)
    or PERSONIFY_ADMIN_KEY is set.
    """
    state = state_of(ctx)
    overrides = {"host": host, "port": port, "workers": workers}
    settings = state.settings(**{k: v for k, v in overrides.items() if v is not None})
    app = build_app(settings)  # checks keys and migrates once, before any worker starts
    console.print(
        f"Personify API on http://{settings.host}:{settings.port}  "
        f"(docs: http://{settings.host}:{settings.port}/docs)"
    )
    if settings.workers > 1 and not settings.redis_url:
        console.print(
            "[yellow]warning:[/] several workers without PERSONIFY_REDIS_URL keep separate "
            "online states: a click reaches only the worker that received it"
        )
    if settings.workers > 1 or reload:
        app.state.runtime.close()
        _export_environment(state, settings)
        uvicorn.run(
            FACTORY,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=None if reload else settings.workers,
            reload=reload,
            log_level=settings.log_level,
            timeout_worker_healthcheck=WORKER_STARTUP_SECONDS,
            log_config=logging_config(settings.log_format, settings.log_level),
            access_log=False,  # Personify logs one line per request itself (with its id)
        )
    else:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                    log_config=logging_config(settings.log_format, settings.log_level),
                    access_log=False)


def prepare_demo(stores: Stores, settings: Settings) -> tuple[SampleCounts, bool]:
    """Load the bundled sample unless a previous load completed; returns the tenant's counts
    and whether this call loaded it."""
    tenant = settings.default_tenant
    if sample_loaded(stores, tenant):
        return sample_counts(stores, tenant), False
    console.print("Loading the bundled Online Retail sample (first start only) ...")
    load_sample(
        stores,
        tenant,
        ingestor=default_ingestor(stores, settings.custom_event_types),
        progress=True,
    )
    return sample_counts(stores, tenant), True


def train_demo_model(stores: Stores, settings: Settings) -> None:
    """Train and promote the first model when none is promoted yet (seconds on the sample);
    afterwards the server retrains in the background as events arrive."""
    runtime = open_runtime(stores, **settings.privacy_options())
    models = runtime.model_store(settings.model_dir)  # its promotion applies later erasures
    if models.promoted_version(settings.default_tenant) is not None:
        return
    console.print("Training the first model on the sample (first start only) ...")
    manifest = train_tenant(stores.events, models, settings.default_tenant, TrainingConfig(),
                            catalog=stores.catalog, users=stores.users,
                            privacy=runtime.training())
    console.print(f"  model {manifest.version}: {manifest.events_used:,} events, "
                  f"{manifest.fit_seconds:.1f}s")


DEMO_RECIPIENTS = 24
DEMO_CAMPAIGN = "demo-picks"
DEMO_TEMPLATE: dict[str, Any] = {
    "name": "demo_picks",
    "channel": "email",
    "recommendations": 4,
    "variants": [{
        "language": "en",
        "tone": "formal",
        "subject": "{{ recommendations|length }} {{ recommendations|length|plural('pick', "
                   "'picks') }} chosen for you",
        "preheader": "From what you bought before",
        "html": "<html><body style=\"font-family: sans-serif; max-width: 560px\">"
                "<h1 style=\"font-size: 20px\">Picked for you</h1><ul>"
                "{% for r in recommendations %}<li><a href=\"{{ r.url }}\">"
                "{{ r.title or r.item_id }}</a>{% if r.price %} — {{ r.price }}{% endif %}</li>"
                "{% endfor %}</ul><p style=\"color: #777; font-size: 12px\">"
                "<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>"
                "<img src=\"{{ open_pixel_url }}\" width=\"1\" height=\"1\" alt=\"\">"
                "</body></html>",
        "text": "Picked for you:\n{% for r in recommendations %}- {{ r.title or r.item_id }}\n"
                "{% endfor %}",
    }],
}


def prepare_demo_recipients(stores: Stores, settings: Settings) -> list[str]:
    """The demo campaign's recipients (the first users of the sample), each with a demo
    ``email_marketing`` consent (source ``demo``) recorded once."""
    tenant = settings.default_tenant
    users = [u.user_id for u in stores.users.list(tenant, limit=DEMO_RECIPIENTS)]
    for user_id in users:
        if not any(r.purpose == "email_marketing"
                   for r in stores.consents.history(tenant, user_id)):
            stores.consents.append(tenant, ConsentRecord(
                user_id=user_id, purpose="email_marketing", state=ConsentState.GRANTED,
                source="demo"))
    return users


def send_demo_campaign(app: Any, settings: Settings, recipients: list[str]) -> str:
    """Store the demo template and an A/B campaign to ``recipients`` (idempotent: a second
    start enqueues nothing); the messaging loop sends it to the demo mailbox. Returns the
    guide's lines about it."""
    messaging = app.state.runtime.messaging
    tenant = settings.default_tenant
    messaging.definitions.save_template(tenant, DEMO_TEMPLATE)
    document = {
        "name": DEMO_CAMPAIGN, "template": DEMO_TEMPLATE["name"],
        "send_at": datetime.now(UTC).isoformat(), "primary_metric": "clicks",
        "audience": [{"field": "user_id", "op": "in", "value": recipients}],
        "variants": [
            {"name": "formal"},
            {"name": "friendly", "tone": "informal",
             "subject": "Hey, {{ recommendations|length }} things you might like"},
        ],
        "winner": {"test_share": 0.5, "after": "15m", "if_no_winner": "control"},
    }
    if messaging.definitions.store.get(tenant, "campaign", DEMO_CAMPAIGN) is not None:
        return f"  demo campaign {DEMO_CAMPAIGN!r} already sent"
    campaign, enqueued = messaging.send_campaign(tenant, document)
    return (f"  demo campaign {campaign.name!r}: an A/B test of 2 subjects on half of "
            f"{len(recipients)} customers ({enqueued} messages), the winner to the rest "
            "after 15 minutes")


def demo_guide(app: Any, stores: Stores, settings: Settings, counts: SampleCounts) -> str:
    """The URLs and curl commands to try, with real ids from the loaded sample."""
    base = f"http://127.0.0.1:{settings.port}"
    paths = {getattr(route, "path", "") or "" for route in app.routes}
    paths |= set(app.openapi().get("paths", {}))
    users = stores.users.list(settings.default_tenant, limit=1)
    user = users[0].user_id if users else "12347"
    recent = stores.events.for_user(settings.default_tenant, user, limit=50)
    seen = [e.item_id for e in recent if e.item_id]
    found = stores.catalog.get_many(settings.default_tenant, seen)
    products = [i for i in seen if i in found and found[i].type == "product"]
    item = products[0] if products else (seen[0] if seen else "85123A")
    auth = f'-H "Authorization: Bearer {DEMO_ADMIN_KEY}"'
    lines = [
        f"[bold green]Personify demo[/] — {counts.users:,} users, {counts.items:,} items, "
        f"{counts.events:,} events",
        f"  data: {SAMPLE_ATTRIBUTION}",
        "",
        f"  API docs   {base}/docs",
        f"  health     {base}/health",
    ]
    if any(p.startswith("/dashboard") for p in paths):
        lines.append(f"  dashboard  {base}/dashboard")
        lines.append(f"  sent mail  {base}/dashboard/messaging/sent  (the demo's mailbox: "
                     "nothing leaves this machine)")
    if settings.demo:
        lines.append(f"  demo shop  {base}/demo-shop  (the web snippet: consent banner, "
                     "recommendation widgets; docs/web.md)")
    lines += [
        "",
        f"  demo admin key: {DEMO_ADMIN_KEY}  (demo mode only — never in production)",
        "",
        "  try:",
        f"    curl {auth} {base}/v1/users/{user}",
        f"    curl {auth} '{base}/v1/users/{user}/events?limit=5'",
        f"    curl {auth} '{base}/v1/items?query=heart&limit=5'",
        f"    curl {auth} -H 'Content-Type: application/json' {base}/v1/events "
        f'-d \'{{"event_id": "demo-1", "type": "view", "user_id": "{user}", '
        f'"item_id": "{item}", "timestamp": "2026-01-01T12:00:00Z"}}\'',
    ]
    if "/v1/recommendations" in paths:
        lines.append(f"    curl {auth} '{base}/v1/recommendations?user_id={user}&n=5'")
    if "/v1/items/{item_id}/similar" in paths:
        lines.append(f"    curl {auth} '{base}/v1/items/{item}/similar?n=5'")
    return "\n".join(lines)


def prepare_network_demo(stores: Stores, settings: Settings, data: Path | None) -> str:
    """Load the Stack Exchange network (idempotent), train the people model, return the guide."""
    tenant = settings.default_tenant
    console.print("Loading the Quantum Computing Stack Exchange network ...")
    try:
        counts = load_network_demo(
            stores, tenant, default_ingestor(stores, settings.custom_event_types), data)
        result = train_networking(stores, settings.model_dir, tenant)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="data",
                           accepted="the stackexchange_quantumcomputing_2018 folder") from exc
    console.print(f"  people model: {result.interactions:,} interactions, {result.seconds:.1f}s")
    base = f"http://127.0.0.1:{settings.port}"
    auth = f'-H "Authorization: Bearer {DEMO_ADMIN_KEY}"'
    busiest = max(stores.users.list(tenant, limit=500),
                  key=lambda u: len(u.profile.skills) + len(u.profile.interests), default=None)
    user = busiest.user_id if busiest is not None else "26"
    return "\n".join([
        f"[bold green]Personify network demo[/] — {counts.people:,} people, "
        f"{counts.events:,} person -> person events, {counts.items:,} groups and posts",
        f"  data: {NETWORK_ATTRIBUTION}",
        "  (every person in the answers carries profile_url and this attribution)",
        "",
        f"  API docs   {base}/docs",
        "",
        f"  demo admin key: {DEMO_ADMIN_KEY}  (demo mode only — never in production)",
        "",
        "  try:",
        f"    curl {auth} '{base}/v1/users/{user}/people?n=5'",
        f"    curl {auth} '{base}/v1/users/{user}/feed?n=10'",
        f"    dashboard: {base}/dashboard/users/{user}",
        f"    curl {auth} {base}/v1/users/{user}",
    ])


def demo(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8000,
    db: Annotated[
        Path,
        typer.Option(
            help="SQLite file for the demo data, unless a database URL is configured "
            "(--database-url, PERSONIFY_DATABASE_URL or the config file)."
        ),
    ] = DEMO_DB,
    browser: Annotated[bool, typer.Option(help="Open the dashboard in a browser.")] = True,
    load_only: Annotated[
        bool, typer.Option(help="Load the sample and print the guide, without serving.")
    ] = False,
    dataset: Annotated[
        str, typer.Option(help="'shop' (the bundled Online Retail sample) or 'network' (the "
                          "Quantum Computing Stack Exchange network from the shared datasets "
                          "folder, CC BY-SA).")
    ] = "shop",
    data: Annotated[
        Path | None, typer.Option(help="The network data set's folder (--dataset network).")
    ] = None,
) -> None:
    """Serve the bundled sample data on 127.0.0.1 in demo mode.

    The sample (UCI Online Retail, CC BY 4.0) is loaded the first time into the configured
    database, or else an embedded SQLite file; the URLs and curl commands to try are printed.
    """
    if dataset not in ("shop", "network"):
        raise InvalidInput(f"unknown demo dataset {dataset!r}", field="dataset",
                           accepted="shop or network")
    state = state_of(ctx)
    configured = state.settings()
    use_configured = "database_url" in configured.model_fields_set and db == DEMO_DB
    if dataset == "network" and db == DEMO_DB:
        db = DEMO_DB.with_name("demo-network.db")
    url = state.database_url or (
        configured.database_url if use_configured else f"sqlite:///{db}"
    )
    # the background retraining runs `personify train` in a child process: it inherits these
    os.environ.setdefault("PERSONIFY_DATABASE_URL", url)
    os.environ.setdefault("PERSONIFY_DEMO", "1")
    settings = state.settings(
        demo=True, database_url=url, host="127.0.0.1", port=port,
        retrain_interval_minutes=state.settings().retrain_interval_minutes or 5.0,
        retrain_every_events=200,
        # the messaging worker runs in the background of the demo server and signs its links
        # with the demo-only secret (refused outside demo mode)
        messaging_enabled=True,
        tracking_secret=configured.tracking_secret or DEMO_TRACKING_SECRET,
        public_base_url=(configured.public_base_url
                         if "public_base_url" in configured.model_fields_set
                         else f"http://127.0.0.1:{port}"),
        # the demo shop's "log in" signs a person token like a site's backend would
        person_token_secret=(configured.person_token_secret
                             or secrets.token_urlsafe(32)),
    )
    stores = state.stores(settings)
    if dataset == "network":
        guide = prepare_network_demo(stores, settings, data)
        app = build_app(settings, stores=stores)
        console.print(guide)
    else:
        counts, loaded = prepare_demo(stores, settings)
        if not loaded:
            console.print("Sample data already loaded.")
        train_demo_model(stores, settings)
        recipients = prepare_demo_recipients(stores, settings)
        app = build_app(settings, stores=stores)
        # The demo campaign is delivered to the mailbox the serving demo keeps: --load-only
        # (data for another server) queues none that a non-demo worker could not deliver.
        mail = "" if load_only else "\n\n" + send_demo_campaign(app, settings, recipients)
        console.print(demo_guide(app, stores, settings, counts) + mail)
    if load_only:
        return
    if browser:
        timer = threading.Timer(
            1.5, webbrowser.open, args=[f"http://127.0.0.1:{port}/dashboard"]
        )
        timer.daemon = True
        timer.start()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level=settings.log_level)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``demo`` to the main app."""
    app.command("serve")(serve)
    app.command("demo")(demo)
