"""With ``PERSONIFY_DATABASE_URL=postgresql://...`` nothing is written to a local SQLite file:
the demo load and training, a server with messaging enabled sending a campaign by email and to
the in-app inbox, and a data-subject export leave no SQLite database in the working directory
or in the temporary directory (every file there is checked for the SQLite header, whatever its
name)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from _uvicorn_server import running
from typer.testing import CliRunner

pytest.importorskip("aiosmtpd")

from personify.api import create_app
from personify.cli.main import app as cli
from personify.messaging.smtp_sink import SmtpSink
from personify.settings import Settings
from personify.testing.clocks import daytime_clock

ADMIN = "integration-admin-key-0123456789"
SQLITE_HEADER = b"SQLite format 3\x00"
TEMPLATE = {"variants": [{"subject": "Hello {{ user.name }}", "text": "news"}]}


def sqlite_files(*roots: Path) -> list[Path]:
    """Every file under ``roots`` that is a SQLite database (or named like one)."""
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            named = path.suffix in {".db", ".sqlite", ".sqlite3"} or path.name.endswith(
                ("-wal", "-shm", "-journal")
            )
            with path.open("rb") as handle:
                if named or handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER:
                    found.append(path)
    return found


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


@pytest.mark.slow
@pytest.mark.postgres
def test_a_postgres_deployment_writes_no_local_sqlite_file(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("PERSONIFY_DATABASE_URL", postgres_url)
    monkeypatch.setenv("PERSONIFY_MODEL_DIR", str(work / "models"))
    monkeypatch.delenv("PERSONIFY_DEMO", raising=False)  # the demo sets it: restored after

    demo = CliRunner().invoke(cli, ["demo", "--load-only", "--no-browser"])
    assert demo.exit_code == 0, demo.output
    assert "300 users" in demo.output

    clock: Callable[[], Any] = daytime_clock()
    with SmtpSink() as sink:
        settings = Settings(
            database_url=postgres_url, admin_key=ADMIN, model_dir=str(work / "models"),
            tracking_secret="integration-tracking-secret-xyz", messaging_enabled=True,
            public_base_url="https://links.example", smtp_host=sink.host, smtp_port=sink.port,
        )
        app = create_app(settings, clock=clock)
        app.state.runtime.messaging.poll_s = 0.05
        headers = {"Authorization": f"Bearer {ADMIN}"}
        with running(app) as base, httpx.Client(base_url=base, headers=headers) as http:
            _ok(http.put("/v1/users/ann", json={
                "profile": {"name": "Ann", "email": "ann@example.com"}}))
            for purpose in ("email_marketing", "push_marketing"):  # email, the inbox
                _ok(http.post("/v1/users/ann/consents",
                              json={"purpose": purpose, "state": "granted"}))
            _ok(http.put("/v1/messaging/templates/hello", json=TEMPLATE))
            for channel in ("email", "inbox"):
                campaign = {"name": f"hello-{channel}", "template": "hello", "channel": channel,
                            "send_at": clock().isoformat(),
                            "audience": [{"field": "user_id", "value": "ann"}]}
                assert _ok(http.post("/v1/messaging/campaigns", json=campaign))["enqueued"] == 1
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (
                _ok(http.get("/v1/messaging/outbox"))["counts"] != {"sent": 2}
            ):
                time.sleep(0.05)
            assert _ok(http.get("/v1/messaging/outbox"))["counts"] == {"sent": 2}
            assert len(sink.handler.message_ids) == 1
            assert _ok(http.get("/v1/recommendations", params={"user_id": "ann", "n": 3}))

    export = CliRunner().invoke(cli, ["privacy", "export", "ann"])
    assert export.exit_code == 0, export.output
    kinds = sorted(m["kind"] for m in orjson.loads(export.output)["messages"]["items"])
    assert kinds == ["inbox", "message", "message"]  # read back from PostgreSQL

    assert sqlite_files(work, tmp) == []
