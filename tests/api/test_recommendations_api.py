"""``/v1/recommendations`` end to end through the API: a trained model, live clicks, consent,
anonymous sessions merged on login, filters, similar items, re-ranking, no model yet, scopes,
tenants, and Redis unavailable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.api import create_app
from personify.jobs.training import TrainingConfig, train_tenant
from personify.settings import Settings
from personify.storage.registry import Stores

if TYPE_CHECKING:
    from conftest import TenantKeys

NOW = datetime.now(UTC)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, model_dir=str(tmp_path / "models"), demo=False)


def _seed(client: TestClient, keys: TenantKeys, stores: Stores) -> None:
    h = keys.headers("admin")
    for i in range(40):
        body = {
            "title": f"Товар {i} 🎁",
            "categories": [["shoes", "books", "toys", "food"][i % 4]],
            "price": float(i),
            "type": "product" if i < 36 else "content",
        }
        assert client.put(f"/v1/items/i{i}", json=body, headers=h).status_code == 200
    events: list[dict[str, Any]] = []
    for u in range(30):
        base = 0 if u % 2 == 0 else 20
        for j in range(8):
            item = base + (u * 3 + j * 5) % 20
            events.append(
                {
                    "event_id": f"h{u}-{j}",
                    "type": "view",
                    "user_id": f"u{u}",
                    "item_id": f"i{item}",
                    "timestamp": (NOW - timedelta(days=3, minutes=u * 10 + j)).isoformat(),
                }
            )
    r = client.post("/v1/events/batch", json={"events": events}, headers=keys.headers("ingest"))
    assert r.status_code == 200, r.text


def _train(app: FastAPI, tenant: str) -> str:
    engine = app.state.runtime.engine
    stores = app.state.runtime.stores
    manifest = train_tenant(
        stores.events,
        engine.models,
        tenant,
        TrainingConfig(learn_blend=False),
        catalog=stores.catalog,
        users=stores.users,
    )
    engine.bundles.refresh()
    engine.bundles.get(tenant)
    return manifest.version


def _grant(
    client: TestClient,
    keys: TenantKeys,
    user: str,
    state: str = "granted",
    purposes: tuple[str, ...] = ("personalization", "profiling"),
) -> None:
    for purpose in purposes:
        r = client.post(
            f"/v1/users/{user}/consents",
            headers=keys.headers("admin"),
            json={"purpose": purpose, "state": state, "text_version": "v1"},
        )
        assert r.status_code == 201, r.text


def _recs(client: TestClient, keys: TenantKeys, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/recommendations", json=body, headers=keys.headers("serve"))
    assert r.status_code == 200, r.text
    return r.json()


def _click(
    client: TestClient,
    keys: TenantKeys,
    user: str | None,
    item: str,
    n: int,
    anonymous_id: str | None = None,
) -> None:
    event = {
        "event_id": f"click-{user}-{item}-{n}",
        "type": "click",
        "item_id": item,
        "timestamp": NOW.isoformat(),
    }
    if user:
        event["user_id"] = user
    if anonymous_id:
        event["anonymous_id"] = anonymous_id
    r = client.post("/v1/events", json=event, headers=keys.headers("ingest"))
    assert r.status_code in (200, 201, 202), r.text


def test_untrained_then_trained_and_a_click_changes_the_next_answer(
    client: TestClient, app: FastAPI, tenant_a: TenantKeys, stores: Stores
) -> None:
    _seed(client, tenant_a, stores)
    _grant(client, tenant_a, "newbie")
    cold = _recs(client, tenant_a, user_id="newbie", n=5, explain=True)
    assert cold["model_version"] is None and len(cold["items"]) == 5
    assert any("no trained model" in w for w in cold["warnings"])
    version = _train(app, "default")
    before = _recs(client, tenant_a, user_id="newbie", n=5, explain=True)
    assert before["model_version"] == version
    _click(client, tenant_a, "newbie", "i21", 1)
    after = _recs(client, tenant_a, user_id="newbie", n=5, explain=True, language="ru")
    ids = [i["item_id"] for i in after["items"]]
    assert "i21" not in ids
    assert sum(int(i[1:]) >= 20 for i in ids) >= 4, ids
    top = after["items"][0]
    assert (top["reasons"] and "Потому что" in top["explanation"]) or "Подходит" in top[
        "explanation"
    ]
    assert after["recommendation_id"] and after["personalized"] is True


def test_get_form_similar_and_rerank(
    client: TestClient, app: FastAPI, tenant_a: TenantKeys, stores: Stores
) -> None:
    _seed(client, tenant_a, stores)
    _train(app, "default")
    h = tenant_a.headers("serve")
    r = client.get(
        "/v1/recommendations",
        params={
            "user_id": "u1",
            "n": 3,
            "item_type": "product",
            "explain": "true",
            "country": "DE",
        },
        headers=h,
    )
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    assert all(i["item"]["type"] == "product" for i in r.json()["items"])
    sim = client.get("/v1/items/i3/similar", params={"n": 5, "explain": "true"}, headers=h).json()
    assert sim["items"] and all(int(i["item_id"][1:]) < 20 for i in sim["items"])
    assert "i3" not in [i["item_id"] for i in sim["items"]]
    _grant(client, tenant_a, "r1")
    _click(client, tenant_a, "r1", "i2", 2)
    rr = client.post(
        "/v1/recommendations/rerank",
        headers=h,
        json={"user_id": "r1", "item_ids": ["i30", "i33", "i5", "i7"]},
    ).json()
    assert sorted(i["item_id"] for i in rr["items"]) == ["i30", "i33", "i5", "i7"]
    assert rr["items"][0]["item_id"] in {"i5", "i7"}


def test_withdrawn_consent_takes_effect_on_the_next_call(
    client: TestClient, app: FastAPI, tenant_a: TenantKeys, stores: Stores
) -> None:
    _seed(client, tenant_a, stores)
    _train(app, "default")
    _grant(client, tenant_a, "u4")
    assert _recs(client, tenant_a, user_id="u4", n=5)["personalized"] is True
    _grant(client, tenant_a, "u4", state="withdrawn", purposes=("personalization",))
    out = _recs(client, tenant_a, user_id="u4", n=5, explain=True)
    assert out["personalized"] is False and len(out["items"]) == 5
    assert any("not personalized" in w for w in out["warnings"])


def test_anonymous_session_then_login(
    client: TestClient, app: FastAPI, tenant_a: TenantKeys, stores: Stores
) -> None:
    _seed(client, tenant_a, stores)
    _train(app, "default")
    _click(client, tenant_a, None, "i25", 3, anonymous_id="visitor-1")
    anon = _recs(client, tenant_a, anonymous_id="visitor-1", n=5)
    assert "i25" not in [i["item_id"] for i in anon["items"]]
    assert sum(int(i["item_id"][1:]) >= 20 for i in anon["items"]) >= 4
    _grant(client, tenant_a, "carol")
    r = client.post(
        "/v1/users/carol/aliases",
        json={"anonymous_id": "visitor-1"},
        headers=tenant_a.headers("admin"),
    )
    assert r.status_code == 200, r.text
    events = client.get("/v1/users/carol/events", headers=tenant_a.headers("admin")).json()
    assert any(e["item_id"] == "i25" for e in events["events"])


def test_filters_that_leave_too_few_items(
    client: TestClient, app: FastAPI, tenant_a: TenantKeys, stores: Stores
) -> None:
    _seed(client, tenant_a, stores)
    _train(app, "default")
    out = _recs(
        client, tenant_a, user_id="u2", n=20, filters={"categories": ["books"], "price_max": 9}
    )
    assert 0 < len(out["items"]) < 20
    assert all("books" in i["item"]["categories"] and i["item"]["price"] <= 9 for i in out["items"])
    assert any("only" in w for w in out["warnings"])


def test_bad_requests_name_the_field(client: TestClient, tenant_a: TenantKeys) -> None:
    h = tenant_a.headers("serve")
    r = client.post("/v1/recommendations", json={"user_id": "x", "n": 0}, headers=h)
    assert r.status_code == 422 and "n" in r.json()["error"]["field"]
    r = client.post("/v1/recommendations", json={"user_id": "x", "sources": ["magic"]}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "sources"
    r = client.post(
        "/v1/recommendations",
        json={"user_id": "x", "filters": {"price_min": 5, "price_max": 1}},
        headers=h,
    )
    assert r.status_code == 422


def test_scopes_and_tenants(
    client: TestClient, app: FastAPI, tenant_a: TenantKeys, tenant_b: TenantKeys, stores: Stores
) -> None:
    _seed(client, tenant_a, stores)
    _train(app, "default")
    r = client.post(
        "/v1/recommendations", json={"user_id": "u1"}, headers=tenant_a.headers("ingest")
    )
    assert r.status_code == 403
    r = client.post("/v1/recommendations", json={"user_id": "u1"})
    assert r.status_code == 401
    other = _recs(client, tenant_b, user_id="u1", n=5)
    assert other["items"] == [] and other["model_version"] is None
    r = client.get("/v1/items/i3/similar", headers=tenant_b.headers("serve"))
    assert r.json()["items"] == []


def test_redis_unavailable_degrades_to_in_process(
    stores: Stores, tenant_a: TenantKeys, tmp_path: Path
) -> None:
    settings = Settings(
        database_url="memory://", model_dir=str(tmp_path / "m"), redis_url="redis://127.0.0.1:1/0"
    )
    app = create_app(settings, stores=stores)
    assert any("Redis unavailable" in w for w in app.state.runtime.engine.warnings)
    with TestClient(app) as client:
        _seed(client, tenant_a, stores)
        out = _recs(client, tenant_a, user_id="u1", n=5)
        assert len(out["items"]) == 5


def test_post_accepts_every_option_of_the_get_form(
    client: TestClient, tenant_a: TenantKeys, stores: Stores
) -> None:
    """Each GET query option has a POST body equivalent giving the same answer."""
    _seed(client, tenant_a, stores)
    h = tenant_a.headers("serve")
    get_params = {p["name"] for p in client.get("/openapi.json").json()["paths"][
        "/v1/recommendations"]["get"]["parameters"]}
    body_of = {
        "user_id": {"user_id": "u1"}, "anonymous_id": {"anonymous_id": "a1"}, "n": {"n": 3},
        "item_type": {"item_types": ["product"]}, "category": {"filters": {"categories": ["toys"]}},
        "explain": {"explain": True}, "language": {"language": "ru"},
        "country": {"context": {"location": {"country": "DE"}}},
        "city": {"context": {"location": {"city": "Berlin"}}},
        "device": {"context": {"device": "mobile"}}, "channel": {"context": {"channel": "web"}},
        "include_items": {"include_items": False},
        "latitude": {"context": {"location": {"latitude": 52.5, "longitude": 13.4}}},
        "longitude": {"context": {"location": {"latitude": 52.5, "longitude": 13.4}}},
        "weather": {"context": {"weather": {"condition": "rain"}}},
        "temperature_c": {"context": {"weather": {"temperature_c": 7}}},
        "repetition_penalty": {"repetition": {"penalty": 1}},
        "repetition_hours": {"repetition": {"hours": 2}},
        "cold_slots": {"cold_slots": 2},
    }
    missing = get_params - set(body_of)
    assert not missing, f"GET options without a POST form: {missing}"
    for name, form in body_of.items():
        who = {} if {"user_id", "anonymous_id"} & set(form) else {"user_id": "u1"}
        answer = client.post("/v1/recommendations", json={**who, **form}, headers=h)
        assert answer.status_code == 200, (name, answer.text)
    query = {"user_id": "u1", "n": 3, "category": "toys", "include_items": "false",
             "explain": "true"}
    body = {"user_id": "u1", "n": 3, "filters": {"categories": ["toys"]}, "include_items": False,
            "explain": True}
    got = client.get("/v1/recommendations", params=query, headers=h).json()
    posted = client.post("/v1/recommendations", json=body, headers=h)
    assert posted.status_code == 200, posted.text
    assert [i["item_id"] for i in posted.json()["items"]] == [i["item_id"] for i in got["items"]]
    assert [set(i) for i in posted.json()["items"]] == [set(i) for i in got["items"]]
    assert all("item" not in i or i["item"] is None for i in posted.json()["items"])
