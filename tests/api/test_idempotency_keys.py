"""``Idempotency-Key`` on the API's writes, over a SQLite file and real PostgreSQL: a repeat
with the same key and request gets the first answer (status and body) and acts once; another
request under the same key is refused naming the header; keys are per tenant and API key,
shared by every process on the database, and expire after ``idempotency_hours``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from _tenant_keys import CUSTOM_TYPES, TenantKeys
from fastapi.testclient import TestClient

from personify.api import create_app
from personify.api.idempotency import request_hash
from personify.settings import Settings
from personify.storage.registry import Stores, open_stores
from personify.storage.sql import idempotency as store

START = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
GRANT = {"purpose": "email_marketing", "state": "granted"}
DENY = {"purpose": "email_marketing", "state": "denied"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'idem.db'}"


@pytest.fixture
def clock() -> list[datetime]:
    return [START]


@pytest.fixture
def client(settings: Settings, stores: Stores, tenant_a: TenantKeys, tenant_b: TenantKeys,
           clock: list[datetime]) -> Iterator[TestClient]:
    app = create_app(settings, stores=stores, clock=lambda: clock[0])
    with TestClient(app) as test_client:
        yield test_client


def _consent(client: TestClient, headers: dict[str, str], key: str | None,
             body: dict[str, str], user: str = "ann") -> object:
    extra = {"Idempotency-Key": key} if key is not None else {}
    return client.post(f"/v1/users/{user}/consents", json=body, headers={**headers, **extra})


def _history(stores: Stores, user: str = "ann", tenant: str = "default") -> int:
    return len(stores.consents.history(tenant, user))


def test_a_repeat_gets_the_first_answer_and_acts_once(
    client: TestClient, stores: Stores, admin: dict[str, str]
) -> None:
    first = _consent(client, admin, "k-1", GRANT)
    assert first.status_code == 201, first.text  # type: ignore[attr-defined]
    again = _consent(client, admin, "k-1", dict(reversed(GRANT.items())))  # same JSON content
    assert again.status_code == 201  # type: ignore[attr-defined]
    assert again.content == first.content  # type: ignore[attr-defined]
    assert again.headers["Idempotent-Replayed"] == "true"  # type: ignore[attr-defined]
    assert "Idempotent-Replayed" not in first.headers  # type: ignore[attr-defined]
    assert _history(stores) == 1
    assert _consent(client, admin, None, GRANT).status_code == 201  # type: ignore[attr-defined]
    assert _history(stores) == 2  # without a key every request acts


def test_the_same_key_for_another_request_is_refused_naming_the_header(
    client: TestClient, stores: Stores, admin: dict[str, str]
) -> None:
    assert _consent(client, admin, "k-2", GRANT).status_code == 201  # type: ignore[attr-defined]
    for other in (lambda: _consent(client, admin, "k-2", DENY),
                  lambda: _consent(client, admin, "k-2", GRANT, user="bob")):
        refused = other()
        assert refused.status_code == 422  # type: ignore[attr-defined]
        error = refused.json()["error"]  # type: ignore[attr-defined]
        assert error["field"] == "Idempotency-Key" and "different request" in error["message"]
    assert _history(stores) == 1 and _history(stores, "bob") == 0


def test_keys_are_per_tenant_and_per_api_key(
    client: TestClient, stores: Stores, tenant_a: TenantKeys, tenant_b: TenantKeys
) -> None:
    other_admin = {"Authorization": f"Bearer {stores.keys.create('default', 'a2', ['admin'])[1]}"}
    for headers in (tenant_a.headers("admin"), other_admin, tenant_b.headers("admin")):
        assert _consent(client, headers, "shared", GRANT).status_code == 201  # type: ignore[attr-defined]
    assert _history(stores) == 2 and _history(stores, tenant="globex") == 1
    # a key another API key used is free for this one even with another body
    assert _consent(client, tenant_b.headers("admin"), "k-b", DENY).status_code == 201  # type: ignore[attr-defined]


def test_keys_expire_after_the_configured_time(
    client: TestClient, stores: Stores, admin: dict[str, str], clock: list[datetime],
    settings: Settings,
) -> None:
    assert settings.idempotency_hours == 24
    assert _consent(client, admin, "k-3", GRANT).status_code == 201  # type: ignore[attr-defined]
    clock[0] = START + timedelta(hours=23, minutes=59)
    assert _consent(client, admin, "k-3", DENY).status_code == 422  # type: ignore[attr-defined]
    clock[0] = START + timedelta(hours=24, seconds=1)
    assert _consent(client, admin, "k-3", DENY).status_code == 201  # type: ignore[attr-defined]
    assert [r.state for r in stores.consents.history("default", "ann")] == ["granted", "denied"]


def test_work_in_progress_errors_and_bad_keys(
    client: TestClient, stores: Stores, admin: dict[str, str], clock: list[datetime]
) -> None:
    assert stores.idempotency is not None
    running = store.Scope("default", _key_id(stores), "k-running")
    path = "/v1/users/ann/consents"
    body = b'{"purpose":"email_marketing","state":"granted"}'
    assert stores.idempotency.claim(running, request_hash("POST", path, b"", body), now=START,
                                    ttl=timedelta(hours=1)).verdict is store.Verdict.CLAIMED
    busy = _consent(client, admin, "k-running", GRANT)
    assert busy.status_code == 409  # type: ignore[attr-defined]
    assert busy.json()["error"]["field"] == "Idempotency-Key"  # type: ignore[attr-defined]
    clock[0] = START + store.ABANDONED_AFTER  # its process died: the key can be claimed again
    assert _consent(client, admin, "k-running", GRANT).status_code == 201  # type: ignore[attr-defined]
    # an answer that did nothing (validation error kept; 404 kept) and one that may not be
    invalid = _consent(client, admin, "k-bad", {"purpose": "email_marketing"})
    assert invalid.status_code == 422  # type: ignore[attr-defined]
    assert _consent(client, admin, "k-bad", {"purpose": "email_marketing"}).headers[  # type: ignore[attr-defined]
        "Idempotent-Replayed"] == "true"
    serve = {"Authorization": admin["Authorization"].replace("Bearer ", "Bearer x")}
    assert _consent(client, serve, "k-401", GRANT).status_code == 401  # type: ignore[attr-defined]
    for bad in ("", "\x7fdel", "x" * 256, "two words"):
        refused = _consent(client, admin, bad, GRANT)
        assert refused.status_code == 400, bad  # type: ignore[attr-defined]
        assert refused.json()["error"]["field"] == "Idempotency-Key"  # type: ignore[attr-defined]
    keyed = client.post("/v1/keys", json={"name": "n", "scopes": ["serve"]},
                        headers={**admin, "Idempotency-Key": "k-key"})
    assert keyed.status_code == 400 and "secret" in keyed.json()["error"]["message"]
    assert _history(stores) == 1


def test_several_processes_share_the_keys(
    client: TestClient, stores: Stores, settings: Settings, admin: dict[str, str],
    tenant_a: TenantKeys,
) -> None:
    first = client.post("/v1/experiments", headers={**admin, "Idempotency-Key": "exp-1"},
                        json=_experiment())
    assert first.status_code == 201
    other_stores = open_stores(settings.database_url)  # a second process on the database
    try:
        with TestClient(create_app(settings, stores=other_stores)) as other:
            again = other.post("/v1/experiments", headers={**admin, "Idempotency-Key": "exp-1"},
                               json=_experiment())
            assert (again.status_code, again.content) == (201, first.content)
            fresh = other.post("/v1/experiments", headers=admin, json=_experiment())
            assert fresh.status_code == 409  # without the key: it exists already
    finally:
        other_stores.close()


def test_expired_rows_are_purged(stores: Stores) -> None:
    assert stores.idempotency is not None
    owner = store.Scope("default", "key", "old")
    stores.idempotency.claim(owner, "h", now=START, ttl=timedelta(hours=1))
    stores.idempotency.complete(owner, status=201, content_type="application/json", body=b"{}")
    assert stores.idempotency.claim(owner, "h", now=START, ttl=timedelta(hours=1)).body == b"{}"
    stores.idempotency.release(owner)  # only an unanswered claim is given back
    assert stores.idempotency.claim(owner, "h", now=START,
                                    ttl=timedelta(hours=1)).verdict is store.Verdict.REPLAY
    assert stores.idempotency.purge(START + timedelta(minutes=59)) == 0
    assert stores.idempotency.purge(START + timedelta(hours=1)) == 1


def _key_id(stores: Stores) -> str:
    return next(k.key_id for k in stores.keys.list("default") if k.name == "default admin")


def _experiment() -> dict[str, object]:
    return {"name": "idem-exp", "layer": "home",
            "variants": [{"name": "control", "payload": {"personalized": False}},
                         {"name": "reco", "payload": {"sources": ["popular"]}}],
            "primary_metric": {"name": "ctr", "kind": "ratio"}, "planned_sample_size": 40}


assert CUSTOM_TYPES  # the settings fixture declares them
