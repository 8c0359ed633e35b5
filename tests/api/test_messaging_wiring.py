"""``personify.runtime.messaging_wiring``: where the messaging state lives for each database URL,
the tracking secret rules, and the consent switch to the privacy capability's policy."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from personify.api import create_app
from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.errors import ConfigurationError
from personify.messaging.state_stores import state_location
from personify.runtime.container import build_runtime
from personify.runtime.messaging_wiring import (
    marketing_consent,
    messaging_db_path,
    tracking_signer,
)
from personify.settings import Settings
from personify.storage.registry import open_stores


@pytest.mark.parametrize(
    ("url", "override", "expected"),
    [
        ("memory://", None, None),
        ("sqlite:///var/data/shop.db", None, "var/data/shop.messaging.db"),
        ("sqlite:////srv/p.sqlite", None, "/srv/p.messaging.db"),
        ("sqlite:///var/data/shop.db", "/data/m.db", "/data/m.db"),
        ("postgresql://db/personify", None, None),  # in the PostgreSQL database itself
    ],
)
def test_messaging_state_location(url: str, override: str | None, expected: str | None) -> None:
    settings = Settings(database_url=url, messaging_db_path=override)
    assert messaging_db_path(settings) == expected


def test_postgres_keeps_the_messaging_state_in_the_database() -> None:
    assert state_location("postgresql://db/personify").kind == "database"
    assert state_location("memory://").kind == "memory"
    with pytest.raises(ConfigurationError) as refused:
        state_location("postgresql://db/personify", "/data/m.db")
    assert refused.value.field == "messaging_db_path"


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
    allows = app.state.runtime.messaging.consent
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

    assert marketing_consent(stores, lambda: Everything())("default", "u1", "email_marketing")
    runtime = build_runtime(
        Settings(database_url="memory://", demo=True), stores=stores,
        consent_policy=Everything(),
    )
    assert runtime.messaging.consent("default", "u1", "email_marketing")
    runtime.close()
    app.state.runtime.close()
    stores.close()


def test_worker_threads_each_get_their_own_smtp_connection() -> None:
    pytest.importorskip("aiosmtpd")
    from personify.domain.users import User
    from personify.messaging.campaigns import Campaign
    from personify.messaging.smtp import SmtpSender
    from personify.messaging.smtp_sink import SmtpSink

    stores = open_stores("memory://")
    with SmtpSink() as sink:
        settings = Settings(database_url="memory://", demo=True, smtp_host=sink.host,
                            smtp_port=sink.port, messaging_worker_threads=3)
        app: FastAPI = create_app(settings, stores=stores)
        runtime = app.state.runtime.messaging
        runtime.worker.guardrails.quiet_hours = None
        stores.users.upsert("default", [
            User(user_id=f"u{k}", profile={"email": f"u{k}@example.com"}) for k in range(6)])
        for k in range(6):
            stores.consents.append("default", ConsentRecord(
                user_id=f"u{k}", purpose="email_marketing", state=ConsentState.GRANTED))
        runtime.definitions.save_template("default", {
            "name": "hi", "recommendations": 0, "variants": [{"subject": "Hi", "text": "x"}]})
        campaign = Campaign(name="c", template="hi", send_at=runtime.clock())
        assert runtime.schedule_campaign("default", campaign) == 6
        assert runtime.worker.concurrency == 3
        assert runtime.worker.run_until_idle() == 6
        assert len(set(sink.handler.message_ids)) == 6 == len(sink.handler.message_ids)
        # every thread that sent holds its own connection (how many threads got work varies)
        senders = runtime.worker._thread_senders
        connections = {id(s["email"]) for s in senders}
        assert 1 <= len(connections) == len(senders) <= 3
        assert all(isinstance(s["email"], SmtpSender) for s in runtime.worker._thread_senders)
        runtime.close()
        app.state.runtime.engine.close()
    stores.close()
