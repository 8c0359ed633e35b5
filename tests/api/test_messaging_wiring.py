"""``personify.api.messaging_wiring``: where the messaging state lives for each database URL,
the tracking secret rules, and the consent switch to the privacy capability's policy."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from personify.api import create_app
from personify.api.messaging_wiring import messaging_db_path, tracking_signer
from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.errors import ConfigurationError
from personify.settings import Settings
from personify.storage.registry import open_stores


@pytest.mark.parametrize(
    ("url", "override", "expected"),
    [
        ("memory://", None, None),
        ("sqlite:///var/data/shop.db", None, "var/data/shop.messaging.db"),
        ("sqlite:////srv/p.sqlite", None, "/srv/p.messaging.db"),
        ("postgresql://db/personify", None, "var/messaging.db"),
        ("postgresql://db/personify", "/data/m.db", "/data/m.db"),
    ],
)
def test_messaging_state_location(url: str, override: str | None, expected: str | None) -> None:
    settings = Settings(database_url=url, messaging_db_path=override)
    assert messaging_db_path(settings) == expected


def test_tracking_secret_rules() -> None:
    with pytest.raises(ConfigurationError) as refused:
        tracking_signer(Settings(messaging_enabled=True))
    assert refused.value.field == "tracking_secret"
    with pytest.raises(ValueError, match="at least 24"):
        Settings(tracking_secret="short")
    fixed = Settings(tracking_secret="s" * 24, public_base_url="https://x.example/")
    token = tracking_signer(fixed).unsubscribe_token("t", "u", "email")
    assert tracking_signer(fixed).verify(token, "u") == ["u", "t", "u", "email"]
    ephemeral = tracking_signer(Settings())  # per process: another process cannot verify it
    assert ephemeral.unsubscribe_token("t", "u", "email") != token
    assert ephemeral.open_url("t", "m", "u").startswith("http://127.0.0.1:8000/t/o/")


def test_consent_follows_records_and_an_installed_policy() -> None:
    stores = open_stores("memory://")
    app: FastAPI = create_app(Settings(database_url="memory://", demo=True), stores=stores)
    allows = app.state.messaging.consent
    assert not allows("default", "u1", "email_marketing")  # opt-in: nothing granted yet
    stores.consents.append("default", ConsentRecord(
        user_id="u1", purpose="email_marketing", state=ConsentState.GRANTED))
    assert allows("default", "u1", "email_marketing")
    stores.consents.append("default", ConsentRecord(
        user_id="u1", purpose="email_marketing", state=ConsentState.WITHDRAWN))
    assert not allows("default", "u1", "email_marketing")

    class Everything:
        def allows(self, tenant: str, user_id: str, purpose: str) -> bool:
            return True

    app.state.consent_policy = Everything()
    assert allows("default", "u1", "email_marketing")
    app.state.messaging.close()
    app.state.engine.close()
    stores.close()
