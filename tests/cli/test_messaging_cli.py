"""``personify messages ...`` through typer's CliRunner on a SQLite file and a local SMTP
server: validate and list journeys, preview a template, send a campaign, run the worker once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner, Result

from personify.cli import messaging
from personify.cli.context import CliState
from personify.cli.errors import USER_ERROR_EXIT, ErrorHandlingGroup
from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.items import Item
from personify.domain.users import User
from personify.storage.registry import open_stores
from personify.storage.sql.messaging_definitions import SqlMessagingDefinitions
from personify.testing.clocks import daytime_clock

pytest.importorskip("aiosmtpd")

from personify.messaging.smtp_sink import SmtpSink

TEMPLATE = {
    "name": "hello",
    "recommendations": 2,
    "variants": [{"subject": "Hi {{ user.name }}",
                  "text": "{% for r in recommendations %}* {{ r.title }}\n{% endfor %}"}],
}


def build_app() -> typer.Typer:
    """The group as the lead registers it in ``personify.cli.main`` (``"messages"``)."""
    app = typer.Typer(cls=ErrorHandlingGroup, no_args_is_help=True)

    @app.callback()
    def main(
        ctx: typer.Context,
        database_url: Annotated[str | None, typer.Option("--database-url")] = None,
    ) -> None:
        # the worker's quiet hours follow the clock: a fixed time of day, not the wall clock's
        state = CliState(database_url=database_url, clock=daytime_clock())
        ctx.obj = state
        ctx.call_on_close(state.close)

    app.add_typer(messaging.app, name="messages")
    return app


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def url(tmp_path: Path, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> str:
    database_url = f"sqlite:///{tmp_path / 'cli.db'}"
    for name, value in {
        "ADMIN_KEY": "cli-admin-key-0123456789-abcdef",
        "TRACKING_SECRET": "cli-tracking-secret-0123456789",
        "SMTP_HOST": sink.host, "SMTP_PORT": str(sink.port), "MODEL_DIR": str(tmp_path / "m"),
    }.items():
        monkeypatch.setenv(f"PERSONIFY_{name}", value)
    with open_stores(database_url) as stores:
        stores.catalog.upsert("default", [Item(item_id=f"i{k}", title=f"Item {k}")
                                          for k in range(3)])
        stores.users.upsert("default", [User(user_id="ann", profile={
            "name": "Ann", "email": "ann@example.com"})])
        stores.consents.append("default", ConsentRecord(
            user_id="ann", purpose="email_marketing", state=ConsentState.GRANTED))
        assert stores.database is not None
        SqlMessagingDefinitions(stores.database).put("default", "template", "hello", TEMPLATE,
                                                      enabled=True)
    return database_url


def _run(url: str, *args: str) -> Result:
    return CliRunner().invoke(build_app(), ["--database-url", url, "messages", *args])


def test_journeys_validate_and_list(url: str, tmp_path: Path) -> None:
    good = tmp_path / "j.yaml"
    good.write_text("name: j\ntrigger: {event: view}\nsteps:\n"
                    "  - {type: send, id: s, template: hello}\n", encoding="utf-8")
    result = _run(url, "journeys", "validate", str(good))
    assert result.exit_code == 0, result.output
    assert "ok j: 1 steps (send)" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntrigger: {event: view}\nsteps:\n"
                   "  - {type: wait, id: w, duration: later}\n", encoding="utf-8")
    failed = _run(url, "journeys", "validate", str(bad))
    assert failed.exit_code == USER_ERROR_EXIT and "steps.0" in failed.output
    listed = _run(url, "journeys", "list")
    assert listed.exit_code == 0, listed.output
    assert "No journeys" in listed.output and "abandoned_cart" in listed.output


def test_preview_campaign_and_worker(url: str, tmp_path: Path, sink: SmtpSink) -> None:
    shown = _run(url, "preview", "hello", "--user", "ann")
    assert shown.exit_code == 0, shown.output
    assert "Subject: Hi Ann" in shown.output and "* Item" in shown.output
    missing = _run(url, "preview", "nope", "--user", "ann")
    assert missing.exit_code == USER_ERROR_EXIT and "no template 'nope'" in missing.output

    campaign = tmp_path / "c.yaml"
    campaign.write_text("name: launch\ntemplate: hello\nsend_at: 2026-01-01T00:00:00Z\n",
                        encoding="utf-8")
    sent = _run(url, "send-campaign", str(campaign))
    assert sent.exit_code == 0, sent.output
    assert "1 messages enqueued" in sent.output
    assert "0 messages enqueued" in _run(url, "send-campaign", str(campaign)).output
    assert sink.handler.message_ids == []
    worked = _run(url, "worker", "--once")
    assert worked.exit_code == 0, worked.output
    assert len(sink.handler.message_ids) == 1
    [mail] = sink.handler.messages()
    assert mail["Subject"] == "Hi Ann" and mail["List-Unsubscribe-Post"]


def test_a_test_campaign_and_its_results(url: str, tmp_path: Path, sink: SmtpSink) -> None:
    campaign = tmp_path / "ab.yaml"
    campaign.write_text(
        "name: ab\ntemplate: hello\nsend_at: 2026-01-01T00:00:00Z\nprimary_metric: opens\n"
        "variants:\n  - {name: a}\n  - {name: b, subject: 'Hey {{ user.name }}'}\n",
        encoding="utf-8")
    sent = _run(url, "send-campaign", str(campaign))
    assert sent.exit_code == 0, sent.output
    assert "1 messages enqueued" in sent.output and "A/B/n test of a, b on opens" in sent.output
    assert _run(url, "worker", "--once").exit_code == 0
    [mail] = sink.handler.messages()
    assert mail["Subject"] in ("Hi Ann", "Hey Ann")
    shown = _run(url, "results", "ab")
    assert shown.exit_code == 0, shown.output
    assert "open rate" in shown.output and "too few recipients" in shown.output
    as_json = _run(url, "results", "ab", "--json")
    sent_per_variant = {v["name"]: v["sent"] for v in json.loads(as_json.output)["variants"]}
    assert sum(sent_per_variant.values()) == 1
    assert sent_per_variant["b" if mail["Subject"] == "Hey Ann" else "a"] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntemplate: hello\nsend_at: 2026-01-01T00:00:00Z\nvariants: []\n",
                   encoding="utf-8")
    refused = _run(url, "send-campaign", str(bad))
    assert refused.exit_code == USER_ERROR_EXIT and "variants" in refused.output
    missing = _run(url, "results", "nope")
    assert missing.exit_code == USER_ERROR_EXIT and "no campaign 'nope'" in missing.output


def test_journey_step_results_from_the_command_line(url: str) -> None:
    journey = {"name": "ab_j", "trigger": {"event": "view"}, "steps": [
        {"type": "send", "id": "s", "template": "hello",
         "variants": [{"name": "control"}, {"name": "short", "subject": "Hi"}]}]}
    with open_stores(url) as stores:
        assert stores.database is not None
        SqlMessagingDefinitions(stores.database).put("default", "journey", "ab_j", journey,
                                                      enabled=True)
    shown = _run(url, "journey-results", "ab_j", "s", "--json")
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.output)
    assert document["test"] == "journey:ab_j:s"
    assert [v["name"] for v in document["variants"]] == ["control", "short"]
    assert all(v["sent"] == 0 for v in document["variants"]) and document["final"] is False
    table = _run(url, "journey-results", "ab_j", "s")
    assert table.exit_code == 0 and "short" in table.output, table.output
    missing = _run(url, "journey-results", "ab_j", "nope")
    assert missing.exit_code == USER_ERROR_EXIT and "step" in missing.output, missing.output
