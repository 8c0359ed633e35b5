"""``context.weather`` on a recommendation request: accepted, validated with the field named,
and usable by a boost's ``when`` conditions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from conftest import TenantKeys


def test_weather_context_is_accepted_and_validated(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    h = tenant_a.headers("serve")
    for i in range(6):
        body = {"title": f"Item {i}", "categories": ["umbrellas" if i < 3 else "sunglasses"]}
        assert client.put(f"/v1/items/i{i}", json=body,
                          headers=tenant_a.headers("admin")).status_code == 200
    boost = {"condition": {"field": "categories", "op": "contains", "value": "umbrellas"},
             "factor": 100, "when": [{"field": "weather.condition", "value": "rain"}]}
    r = client.post("/v1/recommendations", headers=h, json={
        "n": 3, "context": {"weather": {"condition": "rain", "temperature_c": 9}},
        "rules": {"boosts": [boost]}})
    assert r.status_code == 200, r.text
    assert [i["item_id"] for i in r.json()["items"]] == ["i0", "i1", "i2"]
    bad = client.post("/v1/recommendations", headers=h, json={
        "n": 3, "context": {"weather": {"condition": "hail"}}})
    assert bad.status_code == 422
    assert "weather" in bad.text and "condition" in bad.text
