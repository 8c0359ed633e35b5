"""Messaging wired into the service (issue 7): what it costs and how fast it goes end to end.

(a) The journey listener: events/s handled by ``runtime.on_events`` (what ingestion calls
    after every stored batch) with the ``abandoned_cart`` and ``abandoned_browse`` examples
    enabled: per event an active-run lookup and update in the messaging SQLite file, the
    trigger check, a user lookup and a run start for add_to_cart. For context, the whole
    ingestion path (``app.state.runtime.ingestor``, SQLite file database, batches of 500) with and
    without those journeys; its absolute rate depends on every other listener in the tree.
(b) Tracked clicks: requests/s of ``GET /t/c/{token}`` through the ASGI app (token check, link
    lookup, one ``email_click`` event ingested, 302).
(c) A campaign through the service: ``POST /v1/messaging/campaigns`` to N recipients, then the
    runtime's outbox worker renders each message with the person's block from the real serving
    chain (live popularity, no trained model) and delivers it to a local aiosmtpd sink.

    python benchmarks/messaging_service.py                  # 1,000 events, 2,000 recipients
    python benchmarks/messaging_service.py --recipients 500 --no-write

With ``--postgres-url postgresql://...`` the same phases run a second time on PostgreSQL (the
events, people, catalogue and the messaging state in one database, in a schema made for the
run and dropped after), reported beside the SQLite run of the same invocation as ratios
(``pg_to_sqlite_*``), and every file of the run's folder and of the working directory is
checked for a SQLite header afterwards (``sqlite_files_left_with_postgres``, which must be 0).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from benchmarks._postgres import postgres_schema_url
from benchmarks._report import write_results
from personify.api import create_app
from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.events import Event
from personify.domain.items import Item
from personify.domain.users import Profile, User
from personify.messaging.smtp_sink import SmtpSink
from personify.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ADMIN = "benchmark-admin-key-0123456789"
HEADERS = {"Authorization": f"Bearer {ADMIN}"}
TEMPLATE = {
    "recommendations": 4,
    "variants": [{
        "subject": "{{ user.name }}, picked for you",
        "html": "<html><body>{% for r in recommendations %}<a href=\"{{ r.url }}\">{{ r.title }}"
                "</a>{% endfor %}</body></html>",
        "text": "{% for r in recommendations %}{{ r.title }}\n{% endfor %}",
    }],
}


def _app(folder: Path, sink: SmtpSink, database_url: str | None = None) -> Any:
    settings = Settings(
        database_url=database_url or f"sqlite:///{folder / 'bench.db'}",
        admin_key=SecretStr(ADMIN),
        model_dir=str(folder / "models"),
        tracking_secret=SecretStr("benchmark-tracking-secret-0123"),
        smtp_host=sink.host, smtp_port=sink.port,
    )
    return create_app(settings)


def _events(n: int, start: int, users: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC) - timedelta(minutes=5)
    return [
        {"event_id": f"b{start + k}", "type": "add_to_cart" if k % 5 == 0 else "view",
         "user_id": f"u{(start + k) % users}", "item_id": f"i{(start + k) % 300}",
         "price": 30.0, "timestamp": now.isoformat()}
        for k in range(n)
    ]


def ingest_rate(app: Any, n: int, start: int, users: int) -> float:
    ingestor = app.state.runtime.ingestor
    began = time.perf_counter()
    for offset in range(0, n, 500):
        batch = _events(min(500, n - offset), start + offset, users)
        result = ingestor.ingest("default", batch)
        assert not result.rejected, result.rejected[:1]
    return n / (time.perf_counter() - began)


def listener_rate(runtime: Any, n: int, start: int, users: int) -> float:
    batches = [[Event.model_validate(e) for e in _events(min(500, n - at), start + at, users)]
               for at in range(0, n, 500)]
    began = time.perf_counter()
    for batch in batches:
        runtime.on_events("default", batch)
    return n / (time.perf_counter() - began)


SQLITE_HEADER = b"SQLite format 3\x00"


def sqlite_files(*roots: Path) -> list[Path]:
    """Files under ``roots`` that are SQLite databases (by header) or named like their logs."""
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            with path.open("rb") as handle:
                if handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER or path.name.endswith(
                    ("-wal", "-shm", "-journal")
                ):
                    found.append(path)
    return found


def run(args: argparse.Namespace, folder: Path, database_url: str | None) -> dict[str, float]:
    """Every phase once on one database; the rates by name."""
    with SmtpSink(keep_bodies=False) as sink:
        app = _app(folder, sink, database_url)
        stores, runtime = app.state.runtime.stores, app.state.runtime.messaging
        stores.catalog.upsert("default", [
            Item(item_id=f"i{k}", title=f"Item {k}", price=10.0 + k % 50,
                 properties={"url": f"https://shop.example/{k}"}) for k in range(300)])
        people = args.recipients
        users = [User(user_id=f"u{k}", profile=Profile(name=f"User {k}",
                                                      email=f"u{k}@example.com"))
                 for k in range(people)]
        for at in range(0, len(users), 1000):
            stores.users.upsert("default", users[at:at + 1000])
        for user in users:
            stores.consents.append("default", ConsentRecord(
                user_id=user.user_id, purpose="email_marketing", state=ConsentState.GRANTED))
        app.state.runtime.start(messaging_loop=False)  # the engine, as at a server's start
        client = TestClient(app)

        ingest_rate(app, 1_000, 10_000_000, people)  # warm-up
        without = ingest_rate(app, args.events, 0, people)
        for name in ("abandoned_cart", "abandoned_browse"):
            assert client.post(f"/v1/messaging/journeys/{name}/enable",
                               headers=HEADERS).status_code == 200
        with_journeys = ingest_rate(app, args.events, args.events, people)
        listener = listener_rate(runtime, args.events, 20_000_000, people)
        runs = sum(len(runtime.state.runs.active("default", u.user_id)) for u in users)
        print(f"journey listener: {listener:,.0f} events/s ({runs} active runs); ingest: "
              f"{without:,.0f} events/s without journeys, {with_journeys:,.0f} with 2")
        for name in ("abandoned_cart", "abandoned_browse"):
            client.post(f"/v1/messaging/journeys/{name}/disable", headers=HEADERS)

        assert client.put("/v1/messaging/templates/digest", json=TEMPLATE,
                          headers=HEADERS).status_code == 200
        campaign = {"name": "bench", "template": "digest",
                    "send_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}
        runtime.worker.guardrails.quiet_hours = None
        began = time.perf_counter()
        response = client.post("/v1/messaging/campaigns", json=campaign, headers=HEADERS)
        assert response.json()["enqueued"] == args.recipients, response.text
        enqueued_s = time.perf_counter() - began
        runtime.worker.run_until_idle()
        campaign_s = time.perf_counter() - began
        deadline = time.monotonic() + 30
        while len(sink.handler.message_ids) < args.recipients and time.monotonic() < deadline:
            time.sleep(0.05)
        delivered = len(set(sink.handler.message_ids))
        assert delivered == args.recipients, (delivered, runtime.worker.stats)
        rate = args.recipients / campaign_s
        print(f"campaign: {args.recipients} recipients enqueued in {enqueued_s:.2f} s, "
              f"delivered in {campaign_s:.2f} s = {rate:,.0f} messages/s")

        sink.handler.keep_bodies = True
        runtime.schedule_campaign("default", runtime.definitions.save_campaign(
            "default", {**campaign, "name": "clicks"}))
        runtime.worker.run_until_idle()
        time.sleep(0.5)
        body = sink.handler.messages()[-1].get_body(("html",))
        assert body is not None, "the campaign message has no HTML part"
        html = body.get_content()
        link = urlsplit(re.findall(r'href="([^"]+/t/c/[^"]+)"', html)[0]).path
        began = time.perf_counter()
        for _ in range(args.clicks):
            assert client.get(link, follow_redirects=False).status_code == 302
        clicks = args.clicks / (time.perf_counter() - began)
        print(f"clicks: {clicks:,.0f} tracked redirects/s")
        client.close()
        runtime.close()
        app.state.runtime.engine.close()
        stores.close()
    return {
        "journey_listener_events_per_s": listener,
        "ingest_events_per_s_without_journeys": without,
        "ingest_events_per_s_with_2_journeys": with_journeys,
        "service_campaign_messages_per_s": rate,
        "tracked_clicks_per_s": clicks,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000)
    parser.add_argument("--recipients", type=int, default=2_000)
    parser.add_argument("--clicks", type=int, default=300)
    parser.add_argument("--postgres-url", default=None,
                        help="also run on this PostgreSQL server (a schema made for the run)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = run(args, Path(tmp), None)
    metrics: dict[str, Any] = {
        "journey_listener_events_per_s": round(sqlite["journey_listener_events_per_s"]),
        "ingest_events_per_s_without_journeys": round(
            sqlite["ingest_events_per_s_without_journeys"]),
        "ingest_events_per_s_with_2_journeys": round(sqlite["ingest_events_per_s_with_2_journeys"]),
        "journey_ingest_overhead_ratio": round(
            sqlite["ingest_events_per_s_without_journeys"]
            / sqlite["ingest_events_per_s_with_2_journeys"], 2),
        "service_campaign_recipients": args.recipients,
        "service_campaign_messages_per_s": round(sqlite["service_campaign_messages_per_s"], 1),
        "tracked_clicks_per_s": round(sqlite["tracked_clicks_per_s"]),
    }
    if args.postgres_url:
        url, drop = postgres_schema_url(args.postgres_url)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                postgres = run(args, folder, url)
                left = sqlite_files(folder, Path.cwd())
        finally:
            drop()
        for name, value in postgres.items():
            metrics[f"pg_{name}"] = round(value, 1)
            metrics[f"pg_to_sqlite_{name.removesuffix('_per_s')}"] = round(value / sqlite[name], 2)
        metrics["sqlite_files_left_with_postgres"] = len(left)
        if left:
            print(f"SQLite files written with PostgreSQL: {left}")
    metrics["load_average_before"] = round(load_before, 2)
    metrics["load_average_after"] = round(os.getloadavg()[0], 2)
    print(metrics)
    if not args.no_write:
        print(write_results("messaging_service", metrics))


if __name__ == "__main__":
    main()
