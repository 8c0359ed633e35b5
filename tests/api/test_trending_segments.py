"""Trending per segment of the request's context, served through the chain: what is popular
in the request's city, on its device and in its part of the day comes first, with the place
named in the reason; a request without that context gets the global ranking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from conftest import TenantKeys

NOW = datetime.now(UTC)


def _views(item: str, count: int, **context: Any) -> list[dict[str, Any]]:
    return [{"event_id": f"{item}-{k}-{len(context)}", "type": "view", "user_id": f"u{k}",
             "item_id": item, "context": context,
             "timestamp": (NOW - timedelta(minutes=k)).isoformat()} for k in range(count)]


def _trending(client: TestClient, keys: TenantKeys, context: dict[str, Any]) -> list[Any]:
    r = client.post("/v1/recommendations", headers=keys.headers("serve"), json={
        "anonymous_id": "me", "n": 3, "sources": ["trending"], "explain": True,
        "context": context, "repetition": {"penalty": 1}})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_trending_follows_city_device_and_part_of_the_day(
    client: TestClient, tenant_a: TenantKeys
) -> None:
    for k in range(12):  # live popularity counts people who consented
        for purpose in ("personalization", "profiling"):
            r = client.post(f"/v1/users/u{k}/consents", headers=tenant_a.headers("admin"),
                            json={"purpose": purpose, "state": "granted", "text_version": "v1"})
            assert r.status_code == 201, r.text
    for i in ("everywhere", "berlin", "phones", "mornings"):
        assert client.put(f"/v1/items/{i}", json={"title": i},
                          headers=tenant_a.headers("admin")).status_code == 200
    morning = (NOW.replace(hour=8, minute=0, second=0, microsecond=0, tzinfo=None)).isoformat()
    evening = (NOW.replace(hour=20, minute=0, second=0, microsecond=0, tzinfo=None)).isoformat()
    events = [
        *_views("everywhere", 12, local_time=evening),
        *_views("berlin", 5, location={"country": "DE", "city": "Berlin"}, local_time=evening),
        *_views("phones", 5, device="mobile", local_time=evening),
        *_views("mornings", 6, local_time=morning),
    ]
    r = client.post("/v1/events/batch", json={"events": events},
                    headers=tenant_a.headers("ingest"))
    assert r.status_code == 200 and r.json()["stored"] == len(events), r.text

    plain = _trending(client, tenant_a, {"local_time": evening})
    assert plain[0]["item_id"] == "everywhere"
    berlin = _trending(client, tenant_a, {"location": {"country": "DE", "city": "Berlin"},
                                          "local_time": evening})
    assert berlin[0]["item_id"] == "berlin"
    assert berlin[0]["explanation"] == "Popular in Berlin this week"
    phone = _trending(client, tenant_a, {"device": "mobile", "local_time": evening})
    assert phone[0]["item_id"] == "phones"
    early = _trending(client, tenant_a, {"local_time": morning})
    assert early[0]["item_id"] == "mornings"
    assert [i["item_id"] for i in early][1] == "everywhere"
