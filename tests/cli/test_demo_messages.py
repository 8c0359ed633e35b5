"""``personify demo`` sends messages: the demo-only tracking secret, the messaging worker in the
background of the demo server, an A/B campaign delivered to the demo mailbox in its SQLite file
(no SMTP, core install only), the dashboard page showing the rendered messages, and a tracked
open from a shown message becoming an event. The server is the demo's own app, run in process
(uvicorn.run replaced by a TestClient)."""

from __future__ import annotations

import re
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from personify.cli import server
from personify.cli.main import app
from personify.messaging.demo_mailbox import mailbox
from personify.settings import DEMO_ADMIN_KEY, DEMO_TRACKING_SECRET, Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_the_demo_secret_is_refused_outside_the_demo() -> None:
    with pytest.raises(ValidationError, match="refused outside demo mode"):
        Settings(tracking_secret=DEMO_TRACKING_SECRET, demo=False)
    assert Settings(tracking_secret=DEMO_TRACKING_SECRET, demo=True).demo


def test_the_demo_sends_its_campaign_to_the_mailbox_the_dashboard_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PERSONIFY_TRACKING_SECRET", "PERSONIFY_SMTP_HOST", "PERSONIFY_DATABASE_URL",
                 "PERSONIFY_DEMO"):
        monkeypatch.delenv(name, raising=False)
    seen: dict[str, Any] = {}

    def serve(web_app: Any, **_: Any) -> None:
        settings = web_app.state.runtime.settings
        seen["settings"] = settings
        store = web_app.state.runtime.messaging.definitions.store
        with TestClient(web_app) as client:  # the lifespan starts the messaging loop
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                mails = mailbox(store, settings.default_tenant)
                if len(mails) >= seen["expected"]:
                    break
                time.sleep(0.5)
            seen["mails"] = mails
            page = client.get("/dashboard/login")
            token = CSRF_RE.search(page.text)
            assert token is not None
            client.post("/dashboard/login", data={
                "key": DEMO_ADMIN_KEY, "csrf_token": token.group(1), "next": "/dashboard/"})
            seen["page"] = client.get("/dashboard/messaging/sent")
            pixel = re.search(r'src="(http://[^"]+/t/o/[^"]+)"', mails[0]["html"])
            assert pixel is not None
            seen["open"] = client.get(urlsplit(pixel.group(1)).path)
            seen["events"] = web_app.state.runtime.stores.events.for_user(
                settings.default_tenant, mails[0]["user_id"], types=["email_open"])

    original = server.send_demo_campaign

    def counting(web_app: Any, settings: Settings, recipients: list[str]) -> str:
        text = original(web_app, settings, recipients)
        seen["expected"] = web_app.state.runtime.messaging.state.outbox.counts(
            settings.default_tenant).get("queued", 0)
        seen["guide"] = text
        return text

    monkeypatch.setattr(server, "send_demo_campaign", counting)
    monkeypatch.setattr(server.uvicorn, "run", serve)
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(app, ["demo", "--db", str(db), "--no-browser", "--port", "8765"])
    assert result.exit_code == 0, result.output
    assert "/dashboard/messaging/sent" in result.output and "demo-picks" in result.output

    settings = seen["settings"]
    assert settings.demo and settings.messaging_enabled
    assert settings.tracking_secret.get_secret_value() == DEMO_TRACKING_SECRET
    assert 0 < seen["expected"] < server.DEMO_RECIPIENTS  # half tested, the rest held back
    mails = seen["mails"]
    assert len(mails) == seen["expected"]
    assert len({m["user_id"] for m in mails}) == len(mails)  # one message per person
    assert {m["variant"] for m in mails} <= {"formal", "friendly"}
    assert all(m["campaign"] == "demo-picks" and "<li>" in m["html"] for m in mails)
    page = seen["page"]
    assert page.status_code == 200
    for m in mails:
        assert m["to"] in page.text
    assert "srcdoc=" in page.text and "Picked for you" in page.text
    # the demo's A/B test with its sends per variant, from the experiments engine's analysis
    assert "Message tests" in page.text and "demo-picks · clicks" in page.text
    sent = Counter(m["variant"] for m in mails)
    for variant, n in sent.items():
        assert re.search(rf"<td>{variant}[^<]*</td><td class=\"num\">{n}</td>", page.text)
    assert seen["open"].status_code == 200 and len(seen["events"]) == 1

    # a second start sends nothing again
    seen.clear()
    monkeypatch.setattr(server.uvicorn, "run", lambda *a, **k: None)
    again = CliRunner().invoke(app, ["demo", "--db", str(db), "--no-browser", "--port", "8765"])
    assert again.exit_code == 0, again.output
    assert "already sent" in again.output
