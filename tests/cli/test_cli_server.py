"""``personify demo`` (idempotent sample load), ``serve`` (refuses to start without keys),
``db upgrade / current`` and the global options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner, Result

from personify.cli.main import app
from personify.storage.sql import head_revision


def test_demo_load_is_idempotent(tmp_path: Path) -> None:
    runner = CliRunner()
    db = tmp_path / "var" / "demo.db"
    first = runner.invoke(app, ["demo", "--db", str(db), "--load-only", "--no-browser"])
    assert first.exit_code == 0, first.output
    assert "300 users, 2,798 items, 27,046 events" in first.output
    assert "http://127.0.0.1:8000/docs" in first.output
    assert "demo-admin-key-not-for-production" in first.output
    assert "doi.org/10.24432/C5BW33" in first.output
    assert "http://127.0.0.1:8000/demo-shop" in first.output
    second = runner.invoke(app, ["demo", "--db", str(db), "--load-only", "--port", "8123"])
    assert second.exit_code == 0, second.output
    assert "already loaded" in second.output
    assert "300 users, 2,798 items, 27,046 events" in second.output
    assert "http://127.0.0.1:8123/health" in second.output


def test_serve_refuses_to_start_without_keys(personify: Callable[..., Result]) -> None:
    result = personify("serve", "--port", "8999")
    assert result.exit_code == 2
    assert "no API key is configured" in result.output
    assert "field: admin_key" in result.output


def test_db_upgrade_and_current(personify: Callable[..., Result]) -> None:
    upgraded = personify("db", "upgrade")
    assert upgraded.exit_code == 0 and head_revision() in upgraded.output
    current = personify("db", "current")
    assert current.exit_code == 0 and "up to date" in current.output


def test_config_file_and_bad_settings(tmp_path: Path) -> None:
    config = tmp_path / "personify.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path / "from-config.db"}"\n', encoding="utf-8"
    )
    result = CliRunner().invoke(app, ["--config", str(config), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-config.db").exists()
    config.write_text('colour = "blue"\n', encoding="utf-8")
    bad = CliRunner().invoke(app, ["--config", str(config), "db", "current"])
    assert bad.exit_code == 2 and "unknown settings" in bad.output
    weak = CliRunner().invoke(app, ["db", "current"], env={"PERSONIFY_ADMIN_KEY": "short"})
    assert weak.exit_code == 2 and "admin_key" in weak.output
    assert "Traceback" not in weak.output
