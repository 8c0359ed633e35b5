"""The trust model of docs/security.md: a public ``ingest`` key cannot change an existing person's
profile, identity, consent or preferences without a person token signed by the site's backend;
public routes do not echo personal data; amounts are bounded and finite."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _tenant_keys import CUSTOM_TYPES, TenantKeys
from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.api import create_app
from personify.domain import person_tokens
from personify.domain.errors import Forbidden
from personify.settings import Settings
from personify.storage.registry import Stores

MASTER = "m" * 32
DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, custom_event_types=CUSTOM_TYPES, demo=False,
                    person_token_secret=MASTER)


def _token(user_id: str, tenant: str = "default", ttl: int = 600) -> str:
    secret = person_tokens.tenant_secret(MASTER.encode(), tenant)
    return person_tokens.issue(secret, user_id, expiry=int(time.time()) + ttl)


def _doc_issuer() -> Any:
    """The Python sample of docs/security.md, run as a site's backend would."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)
    return namespace["person_token"]


def _basic(secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{secret}:".encode()).decode()}


def _person(client: TestClient, keys: TenantKeys, user_id: str = "u1") -> None:
    r = client.put(f"/v1/users/{user_id}", headers=keys.headers("admin"),
                   json={"profile": {"email": "real@example.com", "name": "Real"}})
    assert r.status_code == 200, r.text


def test_ingest_key_cannot_change_consent_without_a_person_token(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    path = "/v1/users/u1/consents/email_marketing:grant"
    ingest = tenant_a.headers("ingest")
    refused = client.post(path, json={}, headers=ingest)
    assert refused.status_code == 403
    assert refused.json()["error"]["field"] == "X-Person-Token"
    other = client.post(path, json={}, headers={**ingest, "X-Person-Token": _token("u2")})
    assert other.status_code == 403
    expired = _token("u1", ttl=-5)
    assert client.post(path, json={}, headers={**ingest, "X-Person-Token": expired}
                       ).status_code == 403
    forged = _token("u1")[:-3] + "AAA"
    assert client.post(path, json={}, headers={**ingest, "X-Person-Token": forged}
                       ).status_code == 403
    too_long = _token("u1", ttl=person_tokens.MAX_LIFETIME_S + 3600)
    assert client.post(path, json={}, headers={**ingest, "X-Person-Token": too_long}
                       ).status_code == 403
    withdraw = "/v1/users/u1/consents/email_marketing:withdraw"
    assert client.post(withdraw, json={}, headers=ingest).status_code == 403
    current = client.get("/v1/users/u1/consents", headers=tenant_a.headers("admin")).json()
    assert current["history"] == []
    ok = client.post(path, json={}, headers={**ingest, "X-Person-Token": _token("u1")})
    assert ok.status_code == 201, ok.text
    assert client.post(withdraw, json={}, headers=tenant_a.headers("admin")).status_code == 201


def test_a_token_of_another_tenant_is_refused(
    client: TestClient, tenant_a: TenantKeys, tenant_b: TenantKeys
) -> None:
    token = _token("u1", tenant="default")
    r = client.post("/v1/users/u1/consents/profiling:grant", json={},
                    headers={**tenant_b.headers("ingest"), "X-Person-Token": token})
    assert r.status_code == 403


def test_the_documented_issuer_makes_tokens_the_server_accepts(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    issue = _doc_issuer()
    secret_hex = person_tokens.tenant_secret(MASTER.encode(), "default").hex()
    token = issue(secret_hex, "u7", 600)
    r = client.post("/v1/users/u7/consents/personalization:grant", json={"source": "banner"},
                    headers={**tenant_a.headers("ingest"), "X-Person-Token": token})
    assert r.status_code == 201, r.text
    assert issue(secret_hex, "u7", -1) != token
    stale = client.post("/v1/users/u7/consents/personalization:deny", json={},
                        headers={**tenant_a.headers("ingest"),
                                 "X-Person-Token": issue(secret_hex, "u7", -1)})
    assert stale.status_code == 403


def test_not_interested_needs_a_token_and_echoes_no_personal_data(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    admin = tenant_a.headers("admin")
    client.put("/v1/users/u1/preferences", json={"declared_interests": ["secret hobby"]},
               headers=admin)
    ingest = tenant_a.headers("ingest")
    body = {"category": "books"}
    assert client.post("/v1/users/u1/not-interested", json=body, headers=ingest
                       ).status_code == 403
    assert client.get("/v1/users/u1/preferences", headers=admin).json()["muted_categories"] == []
    r = client.post("/v1/users/u1/not-interested", json=body,
                    headers={**ingest, "X-Person-Token": _token("u1")})
    assert r.status_code == 200, r.text
    assert r.json() == {"user_id": "u1", "kind": "category", "value": "books"}
    assert "secret hobby" not in r.text
    assert client.get("/v1/users/u1/preferences", headers=admin
                      ).json()["muted_categories"] == ["books"]


def test_segment_identify_cannot_overwrite_an_existing_person(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    _person(client, tenant_a)
    attack = {"type": "identify", "userId": "u1", "anonymousId": "attacker-anon",
              "messageId": "m1", "traits": {"email": "attacker@evil.example"}}
    new = {"type": "identify", "userId": "newbie", "messageId": "m2",
           "traits": {"email": "newbie@example.com"}}
    answer = client.post("/segment/v1/batch", json={"batch": [attack, new]},
                         headers=_basic(tenant_a.ingest)).json()
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [(0, "forbidden")]
    admin = tenant_a.headers("admin")
    user = client.get("/v1/users/u1", headers=admin).json()
    assert user["profile"]["email"] == "real@example.com"
    assert "attacker-anon" not in user["anonymous_ids"]
    assert client.get("/v1/users/newbie", headers=admin).json()["profile"]["email"] == (
        "newbie@example.com")
    alias = {"type": "alias", "userId": "u1", "previousId": "attacker-anon-2"}
    assert client.post("/segment/v1/alias", json=alias, headers=_basic(tenant_a.ingest)
                       ).json()["rejected"][0]["code"] == "forbidden"
    group = {"type": "group", "userId": "u1", "groupId": "evil-corp"}
    assert client.post("/segment/v1/group", json=group, headers=_basic(tenant_a.ingest)
                       ).json()["rejected"][0]["code"] == "forbidden"
    signed = {**attack, "traits": {"email": "moved@example.com"},
              "context": {"person_token": _token("u1")}}
    ok = client.post("/segment/v1/identify", json=signed, headers=_basic(tenant_a.ingest)).json()
    assert ok["rejected"] == []
    user = client.get("/v1/users/u1", headers=admin).json()
    assert user["profile"]["email"] == "moved@example.com"
    assert "attacker-anon" in user["anonymous_ids"]
    by_admin = {**attack, "traits": {"email": "admin-set@example.com"}}
    assert client.post("/segment/v1/identify", json=by_admin, headers=_basic(tenant_a.admin)
                       ).json()["rejected"] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("quantity", 1e300), ("quantity", -3), ("value", 1e300), ("value", -1e300),
     ("price", -1), ("price", 1e300)],
)
def test_event_amounts_are_bounded(
    client: TestClient, tenant_a: TenantKeys, make_event: Any, field: str, value: float
) -> None:
    event = make_event(type="purchase", **{field: value})
    r = client.post("/v1/events", json=event, headers=tenant_a.headers("ingest"))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_item_and_property_numbers_are_bounded(client: TestClient, tenant_a: TenantKeys) -> None:
    admin = tenant_a.headers("admin")
    assert client.put("/v1/items/i1", json={"price": 1e300}, headers=admin).status_code == 422
    assert client.put("/v1/items/i1", json={"price": -2}, headers=admin).status_code == 422
    assert client.put("/v1/items/i1", json={"price": 19.9}, headers=admin).status_code == 200


def test_person_guard_unit() -> None:
    secret = person_tokens.tenant_secret(MASTER.encode(), "default")
    token = person_tokens.issue(secret, "u1", expiry=1_000)
    guard = person_tokens.PersonGuard(trusted=False, secret=secret, token=token, now=500.0)
    guard.check("u1")
    assert not guard.may_change("u2")
    late = person_tokens.PersonGuard(trusted=False, secret=secret, token=token, now=1_000.0)
    with pytest.raises(Forbidden, match="expired"):
        late.check("u1")
    off = person_tokens.PersonGuard(trusted=False, secret=None, token=token, now=500.0)
    assert not off.may_change("u1")
    assert person_tokens.PersonGuard(trusted=True, secret=None, token=None, now=0).may_change("x")


@pytest.fixture
def no_secret_client(stores: Stores, tenant_a: TenantKeys) -> Iterator[TestClient]:
    app: FastAPI = create_app(Settings(database_url="memory://", demo=False), stores=stores)
    with TestClient(app) as client:
        yield client


def test_without_a_configured_secret_tokens_are_refused(
    no_secret_client: TestClient, tenant_a: TenantKeys
) -> None:
    headers = {**tenant_a.headers("ingest"), "X-Person-Token": _token("u1")}
    r = no_secret_client.post("/v1/users/u1/consents/profiling:grant", json={}, headers=headers)
    assert r.status_code == 403
    assert "not enabled" in r.json()["error"]["message"]
