"""``GET /v1/recommendations`` takes the weather and anti-repetition options POST takes:
``weather`` / ``temperature_c`` / ``latitude`` / ``longitude`` reach the context (and the
logged impression the ranker learns from), ``repetition_penalty`` / ``repetition_hours`` the
anti-repetition rule; bad values are refused naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fastapi.testclient import TestClient

from personify.storage.registry import Stores

if TYPE_CHECKING:
    from conftest import TenantKeys


def _shop(client: TestClient, keys: TenantKeys) -> None:
    for i in range(12):
        assert client.put(f"/v1/items/i{i}", json={"title": f"Item {i}"},
                          headers=keys.headers("admin")).status_code == 200
    now = datetime.now(UTC)
    events = [{"event_id": f"v{i}-{k}", "type": "view", "anonymous_id": f"crowd{k}",
               "item_id": f"i{i}", "timestamp": (now - timedelta(minutes=k)).isoformat()}
              for i in range(12) for k in range(12 - i)]
    r = client.post("/v1/events/batch", json={"events": events}, headers=keys.headers("ingest"))
    assert r.status_code == 200, r.text


def _ids(client: TestClient, keys: TenantKeys, **params: object) -> list[str]:
    r = client.get("/v1/recommendations", params={"anonymous_id": "me", "n": 4, **params},
                   headers=keys.headers("serve"))
    assert r.status_code == 200, r.text
    return [i["item_id"] for i in r.json()["items"]]


def test_repetition_options_on_get(client: TestClient, tenant_a: TenantKeys) -> None:
    _shop(client, tenant_a)
    first = _ids(client, tenant_a)
    assert _ids(client, tenant_a, repetition_penalty=1) == first, "off: the same answer"
    demoted = _ids(client, tenant_a)
    assert demoted != first and len(set(demoted) - set(first)) >= 2
    window = _ids(client, tenant_a, repetition_hours=0, repetition_penalty=0.5)
    assert window == first, "a window of 0 hours counts no impression"


def test_weather_and_place_on_get_reach_the_logged_impression(
    client: TestClient, tenant_a: TenantKeys, stores: Stores
) -> None:
    _shop(client, tenant_a)
    _ids(client, tenant_a, weather="snow", temperature_c=-3, latitude=59.94, longitude=30.31)
    client.app.state.runtime.engine.impressions.flush()  # type: ignore[attr-defined]
    [logged] = [e for e in stores.events.for_anonymous("default", "me", limit=5)
                if e.type == "impression"]
    assert logged.context.weather is not None
    assert (logged.context.weather.condition, logged.context.weather.temperature_c) == ("snow",
                                                                                       -3.0)
    assert logged.context.location is not None and logged.context.location.latitude == 59.94


def test_bad_get_options_name_the_parameter(client: TestClient, tenant_a: TenantKeys) -> None:
    for params, field in (({"weather": "hail"}, "weather"),
                          ({"temperature_c": 99}, "temperature_c"),
                          ({"latitude": 52.5}, "longitude"),
                          ({"latitude": 100, "longitude": 1}, "latitude"),
                          ({"repetition_penalty": 0}, "repetition_penalty"),
                          ({"repetition_hours": 1000}, "repetition_hours")):
        r = client.get("/v1/recommendations", params={"anonymous_id": "me", **params},
                       headers=tenant_a.headers("serve"))
        assert r.status_code == 422, (params, r.text)
        assert field in r.text, (field, r.text)


def test_cold_slots_on_get_and_post_are_validated_naming_the_parameter(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    _shop(client, tenant_a)
    assert len(_ids(client, tenant_a, cold_slots=2)) == 4  # an anonymous visitor: no cold match
    for bad in (-1, 201):
        r = client.get("/v1/recommendations", params={"anonymous_id": "me", "cold_slots": bad},
                       headers=tenant_a.headers("serve"))
        assert r.status_code == 422 and r.json()["error"]["field"] == "cold_slots", r.text
        r = client.post("/v1/recommendations", json={"anonymous_id": "me", "cold_slots": bad},
                        headers=tenant_a.headers("serve"))
        assert r.status_code == 422 and "cold_slots" in r.json()["error"]["field"], r.text
