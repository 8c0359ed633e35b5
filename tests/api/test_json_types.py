"""Every JSON value takes the type the schema names: the API does not coerce ``0`` into a
boolean or a date-time, ``false`` into an integer, ``"1"`` into a number, nor a number in a
query string into a date-time (pydantic's lax mode would). The 422 names the field and the
accepted type; well-typed requests (date-times and enum values as strings) still pass."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from conftest import TenantKeys

TEMPLATE = {"name": "t", "channel": "email", "variants": [{"subject": "Hi", "text": "Hello"}]}


def _refused(answer: Any, field: str, accepted: str) -> None:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["field"] == field, error
    assert accepted in error["accepted"], error


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "accepted"),
    [
        ("PATCH", "/v1/users/u1", {"restricted": 0}, "restricted", "true or false"),
        ("PUT", "/v1/items/i1", {"title": "x", "expires_at": 0}, "expires_at", "ISO 8601"),
        ("PUT", "/v1/items/i1", {"title": "x", "available": "true"}, "available", "true or"),
        ("PUT", "/v1/items/i1", {"title": "x", "price": "12.5"}, "price", "a number"),
        ("PUT", "/v1/items/i1", {"title": 5}, "title", "a string"),
        ("POST", "/v1/users/u1/consents", {"purpose": "email_marketing", "state": "granted",
                                           "expires_at": 0}, "expires_at", "ISO 8601"),
        ("PUT", "/v1/users/u1/preferences", {"updated_at": 0}, "updated_at", "ISO 8601"),
        ("PUT", "/v1/messaging/templates/t", {**TEMPLATE, "recommendations": False},
         "recommendations", "an integer"),
        ("POST", "/v1/recommendations/rerank", {"user_id": "u1", "item_ids": ["i1"],
                                                "explain": 0}, "explain", "true or false"),
    ],
)
def test_a_value_of_another_json_type_is_refused_naming_the_field(
    client: TestClient, tenant_a: TenantKeys, method: str, path: str, body: dict[str, Any],
    field: str, accepted: str,
) -> None:
    assert client.put("/v1/users/u1", json={}, headers=tenant_a.headers("admin")).status_code \
        == 200
    answer = client.request(method, path, json=body, headers=tenant_a.headers("admin"))
    _refused(answer, field, accepted)


@pytest.mark.parametrize(
    ("path", "parameter"),
    [("/v1/kpis?since=0.5", "since"), ("/v1/kpis?until=1700000000", "until"),
     ("/v1/privacy/audit?since=-3", "since"), ("/v1/users/u1/events?before=1e9", "before")],
)
def test_a_number_is_not_a_date_time_in_a_query(
    client: TestClient, tenant_a: TenantKeys, path: str, parameter: str
) -> None:
    _refused(client.get(path, headers=tenant_a.headers("admin")), parameter, "ISO 8601")


def test_well_typed_values_still_pass(client: TestClient, tenant_a: TenantKeys) -> None:
    admin = tenant_a.headers("admin")
    item = {"title": "Lamp", "price": 12, "available": True,
            "expires_at": "2030-01-01T00:00:00Z", "created_at": "2026-01-01T00:00:00+01:00"}
    answer = client.put("/v1/items/i1", json=item, headers=admin)
    assert answer.status_code == 200, answer.text
    assert answer.json()["price"] == 12.0  # an integer is a JSON number
    assert client.put("/v1/users/u1", json={}, headers=admin).status_code == 200
    assert client.patch("/v1/users/u1", json={"restricted": True},
                        headers=admin).status_code == 200
    consent = {"purpose": "email_marketing", "state": "granted",
               "expires_at": "2030-01-01T00:00:00Z"}
    assert client.post("/v1/users/u1/consents", json=consent, headers=admin).status_code == 201
    assert client.put("/v1/messaging/templates/t", json={**TEMPLATE, "recommendations": 2},
                      headers=admin).status_code == 200
    for query in ("since=2026-01-01T00:00:00Z", "since=2026-01-01"):
        assert client.get(f"/v1/kpis?{query}", headers=admin).status_code == 200


def test_a_duration_beyond_range_is_refused_not_a_server_error(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    journey = {"trigger": {"event": "view", "min_count": 2, "window": 10**20},
               "steps": [{"type": "send", "id": "s", "template": "t", "channel": "email"}]}
    answer = client.put("/v1/messaging/journeys/j", json=journey,
                        headers=tenant_a.headers("admin"))
    assert answer.status_code == 422, answer.text
    assert "window" in answer.json()["error"]["field"]
