"""Done-when test of issue 7 through the running service: a journey defined in a YAML file is
loaded over HTTP; user events posted to ``/v1/events`` trigger it; after the wait (a fake clock)
an email with the person's own recommendations arrives at a real local SMTP server; its click
link, requested over HTTP, becomes an ``email_click`` event; a purchase ends the journey; a
consent withdrawal stops another person's run. A real uvicorn server and a SQLite database."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from _uvicorn_server import running

pytest.importorskip("aiosmtpd")

from personify.api import create_app
from personify.messaging.smtp_sink import SmtpSink
from personify.runtime.messaging import MessagingRuntime
from personify.settings import Settings
from personify.testing.clocks import daytime_clock

ADMIN = "integration-admin-key-0123456789"
HEADERS = {"Authorization": f"Bearer {ADMIN}"}
JOURNEY_YAML = """
name: cart_rescue
trigger:
  event: add_to_cart
  where: [{field: event.price, op: gte, value: 20}]
exit_on: [purchase]
steps:
  - {type: wait, id: grace, duration: 2h}
  - type: condition
    id: not_bought
    events_since_entry: {type: purchase, max: 0}
  - {type: send, id: reminder, template: cart_reminder, discount_percent: 15}
  - {type: wait, id: later, duration: 3d}
  - {type: send, id: last_call, template: cart_reminder}
"""
TEMPLATE = {
    "recommendations": 2,
    "variants": [{
        "subject": "{{ user.name }}, your cart is waiting",
        "html": "<html><body>{% for c in cart %}<p>{{ c.title }}</p>{% endfor %}"
                "<p>Code {{ discount.code|default('') }}</p>"
                "{% for r in recommendations %}<a href=\"{{ r.url }}\">{{ r.title }}</a>"
                "{% endfor %}</body></html>",
        "text": "{% for c in cart %}{{ c.title }}\n{% endfor %}",
    }],
}
_ids = itertools.count()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running_sink:
        yield running_sink


def _settings(tmp_path: Path, sink: SmtpSink, **extra: Any) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'personify.db'}", admin_key=ADMIN,
        model_dir=str(tmp_path / "models"), tracking_secret="integration-tracking-secret-xyz",
        public_base_url="https://links.example", smtp_host=sink.host, smtp_port=sink.port,
        **extra,
    )


def _event(kind: str, user: str, item: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"e-{next(_ids)}", "type": kind, "user_id": user, "item_id": item,
            "timestamp": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(), **fields}


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


def _setup_shop(http: httpx.Client, users: tuple[str, ...]) -> None:
    items = {"kettle": ("Kettle", 35.0), "mug": ("Mug", 9.0), "tea": ("Green tea", 6.0),
             "pot": ("Tea pot", 25.0), "cup": ("Cup", 4.0)}
    for item_id, (title, price) in items.items():
        _ok(http.put(f"/v1/items/{item_id}", json={
            "title": title, "price": price,
            "properties": {"url": f"https://shop.example/p/{item_id}"}}))
    for user in users:
        _ok(http.put(f"/v1/users/{user}", json={
            "profile": {"name": user.title(), "email": f"{user}@example.com"}}))
        _ok(http.post(f"/v1/users/{user}/consents",
                      json={"purpose": "email_marketing", "state": "granted"}))
    for other, item in [("p1", "tea"), ("p2", "tea"), ("p3", "pot"), ("p1", "cup")]:
        _ok(http.post("/v1/events", json=_event("view", other, item)))


def _run(http: httpx.Client, user: str) -> dict[str, Any]:
    result: dict[str, Any] = _ok(http.get(f"/v1/messaging/journeys/cart_rescue/runs/{user}"))
    return result


def test_a_journey_from_a_file_runs_end_to_end_through_the_api(
    tmp_path: Path, sink: SmtpSink
) -> None:
    journey_file = tmp_path / "cart_rescue.yaml"
    journey_file.write_text(JOURNEY_YAML, encoding="utf-8")
    app = create_app(_settings(tmp_path, sink))
    runtime: MessagingRuntime = app.state.runtime.messaging
    clock = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    runtime.clock = lambda: clock[0]

    with running(app) as base, httpx.Client(base_url=base, headers=HEADERS) as http:
        _setup_shop(http, ("olga", "bob"))
        _ok(http.put("/v1/messaging/templates/cart_reminder", json=TEMPLATE))
        loaded = _ok(http.put("/v1/messaging/journeys/cart_rescue",
                              content=journey_file.read_bytes(),
                              headers={"Content-Type": "application/yaml"}))
        assert loaded["enabled"] and loaded["missing_templates"] == []

        _ok(http.post("/v1/events", json=_event("add_to_cart", "olga", "mug", price=9.0)))
        assert http.get("/v1/messaging/journeys/cart_rescue/runs/olga").status_code == 404
        _ok(http.post("/v1/events", json=_event("add_to_cart", "olga", "kettle", price=35.0)))
        _ok(http.post("/v1/events", json=_event("add_to_cart", "bob", "pot", price=25.0)))
        run = _run(http, "olga")
        assert run["status"] == "active" and run["wake_at"].startswith("2026-03-02T11:00")
        _ok(http.post("/v1/users/bob/consents",
                      json={"purpose": "email_marketing", "state": "withdrawn"}))

        clock[0] += timedelta(hours=1)
        runtime.run_once()
        assert sink.handler.message_ids == []  # still waiting
        clock[0] += timedelta(hours=1, minutes=1)
        runtime.run_once()

        [mail] = sink.handler.messages()
        assert mail["To"].addresses[0].addr_spec == "olga@example.com"
        assert mail["Subject"] == "Olga, your cart is waiting"
        html = mail.get_body(("html",)).get_content()
        assert "<p>Kettle</p>" in html and re.search(r"Code [0-9A-F]{8}", html)
        served = _ok(http.post("/v1/recommendations", json={
            "user_id": "olga", "n": 2, "log_impression": False}))
        titles = [i["item"]["title"] if i.get("item") else i["item_id"] for i in served["items"]]
        assert len(titles) == 2
        for title in titles:
            assert f">{title}</a>" in html
        bob = _run(http, "bob")
        assert (bob["status"], bob["exit_reason"], bob["messages"]) == (
            "exited", "consent_withdrawn", [])

        click = re.search(r'href="(https://links\.example/t/c/[^"]+)"', html)
        assert click is not None
        redirect = http.get(urlsplit(click.group(1)).path, follow_redirects=False)
        assert redirect.status_code == 302
        assert redirect.headers["location"].startswith("https://shop.example/p/")
        clicks = _ok(http.get("/v1/users/olga/events", params={"type": "email_click"}))
        assert len(clicks["events"]) == 1
        assert _run(http, "olga")["events"] == ["email_click"]

        clock[0] += timedelta(hours=5)
        _ok(http.post("/v1/events", json=_event("purchase", "olga", "kettle", price=35.0)))
        done = _run(http, "olga")
        assert (done["status"], done["exit_reason"]) == ("exited", "goal:purchase")
        assert done["run_id"] == run["run_id"]

        clock[0] += timedelta(days=4)  # the last call never goes out
        runtime.run_once()
        assert len(sink.handler.message_ids) == 1
        counts = _ok(http.get("/v1/messaging/outbox"))["counts"]
        assert counts == {"sent": 1}


def test_the_background_worker_runs_with_the_app_when_enabled(
    tmp_path: Path, sink: SmtpSink
) -> None:
    clock = daytime_clock()  # outside quiet hours whatever the wall clock says
    app = create_app(_settings(tmp_path, sink, messaging_enabled=True), clock=clock)
    app.state.runtime.messaging.poll_s = 0.05
    with running(app) as base, httpx.Client(base_url=base, headers=HEADERS) as http:
        _setup_shop(http, ("ann",))
        _ok(http.put("/v1/messaging/templates/cart_reminder", json=TEMPLATE))
        campaign = {"name": "hello", "template": "cart_reminder",
                    "send_at": clock().isoformat()}
        assert _ok(http.post("/v1/messaging/campaigns", json=campaign))["enqueued"] == 1
        deadline = time.monotonic() + 20
        while not sink.handler.message_ids and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sink.handler.message_ids) == 1
    assert (tmp_path / "personify.messaging.db").exists()
