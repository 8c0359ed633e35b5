"""``personify keys``: the secret is shown once, never listed, and revocation works."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from typer.testing import Result

from personify.domain import person_tokens
from personify.storage.registry import open_stores


def _secret(output: str) -> str:
    match = re.search(r"│ (\S+) │", output)
    assert match, output
    return match.group(1)


def test_create_list_revoke(personify: Callable[..., Result], database_url: str) -> None:
    created = personify("keys", "create", "web shop", "--scope", "ingest", "--scope", "serve")
    assert created.exit_code == 0, created.output
    assert "shown only once" in created.output
    secret = _secret(created.output)
    with open_stores(database_url) as stores:
        record = stores.keys.verify(secret)
        assert record is not None
        assert {s.value for s in record.scopes} == {"ingest", "serve"}
    listed = personify("keys", "list")
    assert listed.exit_code == 0
    assert record.key_id in listed.output and "web shop" in listed.output
    assert secret not in listed.output
    revoked = personify("keys", "revoke", record.key_id)
    assert revoked.exit_code == 0 and record.key_id in revoked.output
    with open_stores(database_url) as stores:
        assert stores.keys.verify(secret) is None
    assert "revoked" in personify("keys", "list").output


def test_key_user_errors_exit_2_with_one_line(personify: Callable[..., Result]) -> None:
    missing = personify("keys", "revoke", "no-such-key")
    assert missing.exit_code == 2
    assert missing.output.strip().splitlines() == [
        "error: no API key 'no-such-key' (field: key_id; accepted: a key id listed by "
        "`personify keys list`)"
    ]
    no_scope = personify("keys", "create", "x")
    assert no_scope.exit_code == 2 and "field: scope" in no_scope.output
    bad_tenant = personify("keys", "create", "x", "--scope", "admin", "--tenant", "Bad Tenant")
    assert bad_tenant.exit_code == 2 and "field: tenant" in bad_tenant.output
    assert "Traceback" not in bad_tenant.output


def test_person_token_secret_is_the_tenants_signing_secret(
    personify: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    off = personify("keys", "person-token-secret")
    assert off.exit_code == 2 and "not enabled" in off.output
    monkeypatch.setenv("PERSONIFY_PERSON_TOKEN_SECRET", "p" * 32)
    shown = personify("keys", "person-token-secret", "--tenant", "globex")
    assert shown.exit_code == 0, shown.output
    expected = person_tokens.tenant_secret(b"p" * 32, "globex").hex()
    assert expected in shown.output.replace("\n", "")
    assert person_tokens.tenant_secret(b"p" * 32, "default").hex() not in shown.output
