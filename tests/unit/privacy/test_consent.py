"""Consent decided at use time: records, expiry, defaults per purpose, operator purposes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from personify.domain.consents import ConsentState
from personify.domain.errors import ConfigurationError, InvalidInput
from personify.privacy.consent import ConsentDefaults, ConsentPolicy
from personify.storage.registry import Stores

T = "default"


def test_opt_in_is_the_default_and_a_grant_allows(stores: Stores) -> None:
    policy = ConsentPolicy(stores.consents)
    assert not policy.allows(T, "u1", "personalization")
    assert policy.decide(T, "u1", "profiling").basis == "default:opt-in"
    policy.record(T, "u1", "personalization", ConsentState.GRANTED, text_version="v2")
    assert policy.allows(T, "u1", "personalization")
    assert not policy.allows(T, "u1", "profiling")
    assert not policy.allows(T, "u2", "personalization")


def test_withdrawal_wins_over_an_opt_out_default_and_history_is_kept(stores: Stores) -> None:
    policy = ConsentPolicy(stores.consents, ConsentDefaults.parse({"personalization": "opt-out"}))
    assert policy.allows(T, "u1", "personalization")
    policy.record(T, "u1", "personalization", ConsentState.GRANTED)
    policy.record(T, "u1", "personalization", ConsentState.WITHDRAWN, source="banner")
    assert not policy.allows(T, "u1", "personalization")
    assert [r.state for r in stores.consents.history(T, "u1")] == [
        ConsentState.GRANTED, ConsentState.WITHDRAWN
    ]


def test_an_expired_grant_means_no_consent(stores: Stores) -> None:
    clock = [datetime(2025, 1, 1, tzinfo=UTC)]
    policy = ConsentPolicy(stores.consents, clock=lambda: clock[0])
    policy.record(T, "u1", "profiling", ConsentState.GRANTED,
                  expires_at=clock[0] + timedelta(days=30))
    assert policy.allows(T, "u1", "profiling")
    clock[0] += timedelta(days=31)
    assert not policy.allows(T, "u1", "profiling")


def test_operator_purposes_and_refusals(stores: Stores) -> None:
    policy = ConsentPolicy(stores.consents, ConsentDefaults.parse({}, ["sms_marketing"]))
    policy.record(T, "u1", "sms_marketing", ConsentState.GRANTED)
    assert policy.allows(T, "u1", "sms_marketing")
    assert "sms_marketing" in policy.decide_all(T, "u1")
    with pytest.raises(InvalidInput) as caught:
        policy.record(T, "u1", "telepathy", ConsentState.GRANTED)
    assert caught.value.field == "purpose" and "sms_marketing" in (caught.value.accepted or "")
    with pytest.raises(InvalidInput):
        policy.record(T, "u1", "profiling", ConsentState.DENIED,
                      expires_at=datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(ConfigurationError):
        ConsentDefaults.parse({"profiling": "maybe"})
    with pytest.raises(ConfigurationError):
        ConsentDefaults.parse({"unknown_purpose": "opt-out"})
