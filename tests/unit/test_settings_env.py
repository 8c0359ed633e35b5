"""List and mapping settings from the environment: lists of names as JSON or comma-separated
values (``PERSONIFY_CUSTOM_EVENT_TYPES=a,b``), the rest as JSON, and a clear error naming the
setting otherwise — from ``load_settings``, the CLI and the app factory."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from personify.api import create_app
from personify.cli.main import app as cli
from personify.settings import Settings, _shape_of, load_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("PERSONIFY_") and not name.startswith("PERSONIFY_TEST"):
            monkeypatch.delenv(name)
    yield


def _fields(shape: str) -> list[str]:
    return [n for n, f in Settings.model_fields.items() if _shape_of(f.annotation) == shape]


NAME_LISTS = _fields("names")


def test_every_list_setting_is_covered() -> None:
    lists = [n for n, f in Settings.model_fields.items()
             if ("list[" in str(f.annotation) or "List[" in str(f.annotation))
             and _shape_of(f.annotation) != "mapping"]
    assert set(lists) == set(NAME_LISTS) | set(_fields("list"))
    assert {"custom_event_types", "consent_purposes", "webhook_allow_hosts"} <= set(NAME_LISTS)
    assert "webhook_channels" in _fields("list")
    mappings = {"segment_track_map", "retention_days", "rate_limit_overrides", "allowed_origins"}
    assert mappings <= set(_fields("mapping"))


@pytest.mark.parametrize("name", NAME_LISTS)
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("signup,video_started", ["signup", "video_started"]),
        (" signup , video_started ,", ["signup", "video_started"]),
        ("signup", ["signup"]),
        ('["signup", "video_started"]', ["signup", "video_started"]),
        ("  [\"signup\"]  ", ["signup"]),
        ("", []),
        ("[]", []),
    ],
)
def test_lists_of_names_take_commas_or_json(
    monkeypatch: pytest.MonkeyPatch, name: str, text: str, expected: list[str]
) -> None:
    monkeypatch.setenv(f"PERSONIFY_{name.upper()}", text)
    assert getattr(load_settings(), name) == expected


@pytest.mark.parametrize("name", NAME_LISTS)
def test_broken_json_list_names_the_setting(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    env = f"PERSONIFY_{name.upper()}"
    monkeypatch.setenv(env, '["signup", ')
    with pytest.raises(ValidationError) as caught:
        load_settings()
    message = str(caught.value)
    assert env in message and "comma-separated" in message
    assert caught.value.errors()[0]["loc"] == (name,)


def test_json_lists_of_objects_and_mappings_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PERSONIFY_WEBHOOK_CHANNELS",
        '[{"name": "push", "url": "https://push.example", "secret": "s3cret"}]',
    )
    monkeypatch.setenv("PERSONIFY_SEGMENT_TRACK_MAP", '{"Signed Up": "signup"}')
    monkeypatch.setenv("PERSONIFY_RETENTION_DAYS", '{"view": 90}')
    monkeypatch.setenv("PERSONIFY_RATE_LIMIT_OVERRIDES", '{"mobile-app": 6000}')
    settings = load_settings()
    assert [c.name for c in settings.webhook_channels] == ["push"]
    assert settings.segment_track_map == {"Signed Up": "signup"}
    assert settings.retention_days == {"view": 90.0}
    assert settings.rate_limit_overrides == {"mobile-app": 6000}


@pytest.mark.parametrize(
    ("name", "text", "accepted"),
    [
        ("webhook_channels", "push,crm", "a JSON list"),
        ("webhook_channels", '{"name": "push"}', "a JSON list"),
        ("segment_track_map", "Signed Up=signup", "a JSON object"),
        ("retention_days", "[90]", "a JSON object"),
        ("rate_limit_overrides", "{'app': 5}", "a JSON object"),
    ],
)
def test_other_shapes_reject_text_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, text: str, accepted: str
) -> None:
    env = f"PERSONIFY_{name.upper()}"
    monkeypatch.setenv(env, text)
    with pytest.raises(ValidationError) as caught:
        load_settings()
    assert env in str(caught.value) and accepted in str(caught.value)


def test_config_files_and_keyword_values_are_untouched(tmp_path: Any) -> None:
    config = tmp_path / "p.toml"
    config.write_text('custom_event_types = ["a,b", "c"]\n', encoding="utf-8")
    assert load_settings(config).custom_event_types == ["a,b", "c"]
    assert Settings(consent_purposes=["x"]).consent_purposes == ["x"]


def test_the_server_starts_with_comma_separated_custom_types(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PERSONIFY_CUSTOM_EVENT_TYPES", "signup,video_started")
    monkeypatch.setenv("PERSONIFY_DATABASE_URL", "memory://")
    monkeypatch.setenv("PERSONIFY_DEMO", "1")
    from personify.settings import DEMO_ADMIN_KEY

    with TestClient(create_app(load_settings())) as client:
        event = {"event_id": "e1", "type": "video_started", "user_id": "u1", "item_id": "i1",
                 "timestamp": datetime.now(UTC).isoformat()}
        r = client.post("/v1/events", json=event,
                        headers={"Authorization": f"Bearer {DEMO_ADMIN_KEY}"})
        assert r.status_code in {200, 201, 202}, r.text
        bad = client.post("/v1/events", json={**event, "event_id": "e2", "type": "nope"},
                          headers={"Authorization": f"Bearer {DEMO_ADMIN_KEY}"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "type"


def test_the_cli_prints_one_line_naming_the_setting(tmp_path: Any) -> None:
    result = CliRunner().invoke(
        cli, ["--database-url", f"sqlite:///{tmp_path / 'c.db'}", "db", "current"],
        env={"PERSONIFY_WEBHOOK_ALLOW_HOSTS": "[crm.internal"},
    )
    assert result.exit_code == 2, result.output
    assert "PERSONIFY_WEBHOOK_ALLOW_HOSTS" in result.output
    assert "Traceback" not in result.output
    ok = CliRunner().invoke(
        cli, ["--database-url", f"sqlite:///{tmp_path / 'c.db'}", "db", "current"],
        env={"PERSONIFY_CUSTOM_EVENT_TYPES": "signup,video_started"},
    )
    assert ok.exit_code == 0, ok.output
