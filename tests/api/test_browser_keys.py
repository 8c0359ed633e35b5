"""The ``browser`` key scope and CORS (docs/web.md, docs/security.md): a public write-only key
bound to one visitor per request, usable only from the tenant's allowed origins, rate-limited
per visitor and per origin; bad input from browsers is refused with a clear error and nothing
is lost or duplicated."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _tenant_keys import CUSTOM_TYPES, TenantKeys

from personify.domain import person_tokens
from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.keys import Scope
from personify.settings import Settings
from personify.storage.registry import Stores

REPO = Path(__file__).resolve().parents[2]
SHOP = "https://shop.example"
OTHER_SHOP = "https://globex.example"
TOKEN_SECRET = "a-person-token-secret-of-enough-length"
ANON = "anon-" + "a" * 22
OTHER_ANON = "anon-" + "b" * 22


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, custom_event_types=CUSTOM_TYPES, demo=False,
        allowed_origins={"default": [SHOP], "globex": [OTHER_SHOP]},
        person_token_secret=TOKEN_SECRET,
        rate_limit_browser_visitor_per_minute=0,
    )


@pytest.fixture
def browser_key(stores: Stores, tenant_a: TenantKeys) -> str:
    return stores.keys.create("default", "web shop", [Scope.BROWSER])[1]


def visitor(key: str, anon: str = ANON, origin: str | None = SHOP, **extra: str) -> dict[str, str]:
    headers = {"X-API-Key": key, "X-Personify-Anonymous-Id": anon, **extra}
    if origin is not None:
        headers["Origin"] = origin
    return headers


def token_for(user_id: str, tenant: str = "default") -> str:
    secret = person_tokens.tenant_secret(TOKEN_SECRET.encode(), tenant)
    return person_tokens.issue(secret, user_id, expiry=int(time.time()) + 600)


_n = iter(range(10**9))


def event(anon: str = ANON, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"b-{next(_n)}", "type": "view", "item_id": "i1", "anonymous_id": anon,
            **fields}


def stored_ids(stores: Stores) -> list[str]:
    """The ids of every event the tenant's store holds, oldest first."""
    return [e.event_id for e in stores.events.scan("default")]


def test_a_browser_key_sends_its_visitors_events_and_the_page_may_read_the_answer(
    client: Any, browser_key: str
) -> None:
    answer = client.post("/v1/events/batch", headers=visitor(browser_key),
                         json={"events": [event(), event()]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 2
    assert answer.headers["access-control-allow-origin"] == SHOP


def test_events_of_another_visitor_are_refused_by_index_and_the_rest_kept(
    client: Any, browser_key: str, stores: Stores
) -> None:
    mine = event()
    answer = client.post("/v1/events/batch", headers=visitor(browser_key), json={"events": [
        event(OTHER_ANON), mine, event(user_id="u-victim"),
    ]})
    assert answer.status_code == 207, answer.text
    rejected = answer.json()["rejected"]
    assert [(r["index"], r["code"], r["field"]) for r in rejected] == [
        (0, "forbidden", "user_id"), (2, "forbidden", "user_id")]
    assert answer.json()["stored"] == 1
    assert stored_ids(stores) == [mine["event_id"]]


def test_a_browser_key_must_name_an_anonymous_visitor(client: Any, browser_key: str) -> None:
    no_visitor = client.post("/v1/events/batch", headers={"X-API-Key": browser_key},
                             json={"events": [event()]})
    assert no_visitor.status_code == 403
    assert no_visitor.json()["error"]["field"] == "X-Personify-Anonymous-Id"
    # a real user id dressed as the anonymous visitor is refused
    dressed = client.post("/v1/events/batch", headers=visitor(browser_key, anon="u-victim"),
                          json={"events": [event("u-victim")]})
    assert dressed.status_code == 403
    assert dressed.json()["error"]["field"] == "X-Personify-Anonymous-Id"


def test_a_user_id_needs_a_person_token_for_that_user(client: Any, browser_key: str) -> None:
    body = {"events": [event(user_id="u7")]}
    without = client.post("/v1/events/batch", json=body,
                          headers=visitor(browser_key, **{"X-Personify-User-Id": "u7"}))
    assert without.status_code == 403
    assert without.json()["error"]["field"] == "X-Person-Token"
    wrong = client.post("/v1/events/batch", json=body, headers=visitor(
        browser_key, **{"X-Personify-User-Id": "u7", "X-Person-Token": token_for("u8")}))
    assert wrong.status_code == 403
    right = client.post("/v1/events/batch", json=body, headers=visitor(
        browser_key, **{"X-Personify-User-Id": "u7", "X-Person-Token": token_for("u7")}))
    assert right.status_code == 200, right.text


def test_a_browser_key_reads_no_profile_and_no_one_elses_recommendations(
    client: Any, browser_key: str
) -> None:
    headers = visitor(browser_key)
    for path in ("/v1/users/u1", "/v1/users/u1/events", "/v1/users/u1/consents",
                 "/v1/items", "/v1/users/u1/export"):
        assert client.get(path, headers=headers).status_code == 403, path
    other = client.get(f"/v1/recommendations?anonymous_id={OTHER_ANON}", headers=headers)
    assert other.status_code == 403
    assert "current visitor" in other.json()["error"]["message"]
    assert client.get("/v1/recommendations?user_id=u1", headers=headers).status_code == 403
    own = client.get(f"/v1/recommendations?anonymous_id={ANON}&n=3", headers=headers)
    assert own.status_code == 200, own.text
    # POST recommendations (any subject in the body) stays a serve-key route
    assert client.post("/v1/recommendations", headers=headers,
                       json={"anonymous_id": ANON}).status_code == 403
    # pages of rows: the visitor's own only, and no page definitions
    refused = client.get(f"/v1/pages/home?anonymous_id={OTHER_ANON}", headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "user_id"
    refused = client.get("/v1/pages/home?user_id=u1", headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "X-Person-Token"
    for path in ("/v1/pages", "/v1/pages/home/definition"):
        assert client.get(path, headers=headers).status_code == 403, path
    page = client.get("/v1/pages/home", headers=headers)  # the visitor's, by default
    assert page.status_code == 200, page.text
    # the snippet reports the rows that were seen: a browser cannot claim every row was
    served = client.get("/v1/pages/home?impressions=served", headers=headers)
    assert served.status_code == 422 and served.json()["error"]["field"] == "impressions"
    assert page.headers["access-control-allow-origin"] == SHOP


def test_origin_not_on_the_tenants_list_is_refused(
    client: Any, browser_key: str, stores: Stores
) -> None:
    for origin in ("https://evil.example", OTHER_SHOP):  # globex's origin is not default's
        answer = client.post("/v1/events/batch", headers=visitor(browser_key, origin=origin),
                             json={"events": [event()]})
        assert answer.status_code == 403, origin
        error = answer.json()["error"]
        assert error["field"] == "Origin" and "allowed_origins" in error["accepted"]
    assert stored_ids(stores) == []
    evil = client.get(f"/v1/recommendations?anonymous_id={ANON}",
                      headers=visitor(browser_key, origin="https://evil.example"))
    assert "access-control-allow-origin" not in evil.headers


def test_preflight_is_answered_only_for_configured_origins(client: Any) -> None:
    ask = {"Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "x-api-key, content-type, x-personify-anonymous-id"}
    ok = client.options("/v1/events/batch", headers={"Origin": SHOP, **ask})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == SHOP
    assert "x-personify-anonymous-id" in ok.headers["access-control-allow-headers"]
    refused = client.options("/v1/events/batch", headers={"Origin": "https://evil.example",
                                                          **ask})
    assert refused.status_code == 403
    assert refused.json()["error"]["field"] == "Origin"
    assert "access-control-allow-origin" not in refused.headers


def test_a_replayed_batch_is_stored_once(
    client: Any, browser_key: str, stores: Stores
) -> None:
    batch = {"events": [event(), event(type="add_to_cart")]}
    first = client.post("/v1/events/batch", headers=visitor(browser_key), json=batch)
    again = client.post("/v1/events/batch", headers=visitor(browser_key), json=batch)
    assert first.status_code == again.status_code == 200
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 2)
    assert sorted(stored_ids(stores)) == sorted(e["event_id"] for e in batch["events"])


def test_malformed_and_oversized_batches_are_refused_without_losing_good_events(
    client: Any, browser_key: str, stores: Stores
) -> None:
    headers = visitor(browser_key)
    not_json = client.post("/v1/events/batch", headers={**headers, "Content-Type":
                                                         "application/json"}, content=b"{oops")
    assert not_json.status_code == 400
    assert not_json.json()["error"]["field"] == "body"
    not_list = client.post("/v1/events/batch", headers=headers, json={"events": "many"})
    assert not_list.status_code == 422
    assert not_list.json()["error"]["field"] == "events"
    too_many = client.post("/v1/events/batch", headers=headers,
                           json={"events": [event() for _ in range(101)]})
    assert too_many.status_code == 413
    assert "at most 100" in too_many.json()["error"]["accepted"]
    huge = client.post("/v1/events/batch", headers=headers,
                       json={"events": [event(properties={"x": "y" * 300_000})]})
    assert huge.status_code == 413
    good = event()
    mixed = client.post("/v1/events/batch", headers=headers,
                        json={"events": [{"event_id": "bad", "type": "view"}, good, 7]})
    assert mixed.status_code == 207
    assert [r["index"] for r in mixed.json()["rejected"]] == [0, 2]
    assert stored_ids(stores) == [good["event_id"]]


def test_the_beacon_route_takes_the_key_and_visitor_from_the_query(
    client: Any, browser_key: str, stores: Stores
) -> None:
    sent = event()
    import orjson

    answer = client.post(
        f"/v1/events/beacon?api_key={browser_key}&anonymous_id={ANON}",
        headers={"Content-Type": "text/plain", "Origin": SHOP},
        content=orjson.dumps({"events": [sent, event(OTHER_ANON)]}),
    )
    assert answer.status_code == 207, answer.text
    assert answer.json()["stored"] == 1
    assert stored_ids(stores) == [sent["event_id"]]
    assert client.post(f"/v1/events/beacon?anonymous_id={ANON}", content=b"{}").status_code == 401


def test_identify_merges_the_anonymous_history_only_with_a_person_token(
    client: Any, browser_key: str, stores: Stores
) -> None:
    viewed = event()
    assert client.post("/v1/events/batch", headers=visitor(browser_key),
                       json={"events": [viewed]}).status_code == 200
    body = {"user_id": "u42", "anonymous_id": ANON}
    no_token = client.post("/v1/browser/identify", headers=visitor(browser_key), json=body)
    assert no_token.status_code == 403
    other_anon = client.post("/v1/browser/identify", json={**body, "anonymous_id": OTHER_ANON},
                             headers=visitor(browser_key, **{"X-Personify-User-Id": "u42",
                                                              "X-Person-Token": token_for("u42")}))
    assert other_anon.status_code == 403
    assert other_anon.json()["error"]["field"] == "anonymous_id"
    linked = client.post("/v1/browser/identify", json=body, headers=visitor(
        browser_key, **{"X-Personify-User-Id": "u42", "X-Person-Token": token_for("u42")}))
    assert linked.status_code == 200, linked.text
    assert linked.json() == {"user_id": "u42", "anonymous_id": ANON, "linked": True}
    history = stores.events.for_user("default", "u42")
    assert [e.event_id for e in history] == [viewed["event_id"]]


def _identify(client: Any, key: str, user_id: str, anon: str) -> None:
    linked = client.post("/v1/browser/identify", json={"user_id": user_id, "anonymous_id": anon},
                         headers=visitor(key, anon, **{"X-Personify-User-Id": user_id,
                                                       "X-Person-Token": token_for(user_id)}))
    assert linked.status_code == 200, linked.text


def _now_state(stores: Stores, subject: str, purpose: str = "personalization") -> tuple[str, str]:
    record = stores.consents.current("default", subject)[purpose]
    return record.state.value, record.source


def test_identify_carries_the_visitors_consent_and_a_refusal_stays_a_refusal(
    client: Any, browser_key: str, stores: Stores, tenant_a: TenantKeys
) -> None:
    admin = tenant_a.headers()
    earlier = datetime.now(UTC) - timedelta(days=1)
    # a grant in the banner before login becomes the user's (who had no record)
    granted = client.post(f"/v1/users/{ANON}/consents/personalization:grant",
                          headers=visitor(browser_key), json={"source": "web-snippet"})
    assert granted.status_code == 201, granted.text
    assert client.post("/v1/events/batch", headers=visitor(browser_key),
                       json={"events": [event()]}).json()["stored"] == 1
    _identify(client, browser_key, "u42", ANON)
    assert _now_state(stores, "u42") == ("granted", "identify")
    assert "profiling" not in stores.consents.current("default", "u42"), "only what was decided"
    assert len(stores.events.for_user("default", "u42")) == 1
    # the account granted yesterday; this visitor refused before logging in: still refused
    stores.consents.append("default", ConsentRecord(
        user_id="u43", purpose="personalization", state=ConsentState.GRANTED,
        recorded_at=earlier))
    denied = client.post(f"/v1/users/{OTHER_ANON}/consents/personalization:deny",
                         headers=visitor(browser_key, OTHER_ANON), json={"source": "web-snippet"})
    assert denied.status_code == 201, denied.text
    _identify(client, browser_key, "u43", OTHER_ANON)
    assert _now_state(stores, "u43") == ("denied", "identify")
    served = client.get("/v1/recommendations?user_id=u43", headers=admin)
    assert served.status_code == 200 and not served.json()["personalized"]
    # a visitor's refusal older than the account's own later grant: the later word stands
    third = "anon-" + "c" * 22
    stores.consents.append("default", ConsentRecord(
        user_id=third, purpose="personalization", state=ConsentState.DENIED,
        recorded_at=earlier))
    assert client.post("/v1/users/u44/consents/personalization:grant", headers=admin,
                       json={"source": "account"}).status_code == 201
    _identify(client, browser_key, "u44", third)
    assert _now_state(stores, "u44") == ("granted", "account")
    # linking again changes nothing
    _identify(client, browser_key, "u42", ANON)
    assert [r.source for r in stores.consents.history("default", "u42")] == ["identify"]


def test_a_visitor_records_only_their_own_consent(client: Any, browser_key: str) -> None:
    headers = visitor(browser_key)
    own = client.post(f"/v1/users/{ANON}/consents/personalization:grant", headers=headers,
                      json={"source": "web-snippet"})
    assert own.status_code == 201, own.text
    other = client.post(f"/v1/users/{OTHER_ANON}/consents/personalization:grant",
                        headers=headers, json={"source": "web-snippet"})
    assert other.status_code == 403
    user = client.post("/v1/users/u1/consents/personalization:withdraw", headers=headers,
                       json={"source": "web-snippet"})
    assert user.status_code == 403


def test_browser_keys_are_rate_limited_per_visitor_and_per_origin(
    database_url: str, stores: Stores, tenant_a: TenantKeys
) -> None:
    from fastapi.testclient import TestClient

    from personify.api import create_app

    key = stores.keys.create("default", "web", [Scope.BROWSER])[1]
    settings = Settings(database_url=database_url, allowed_origins={"default": [SHOP]},
                        rate_limit_browser_visitor_per_minute=2,
                        rate_limit_browser_origin_per_minute=3)
    with TestClient(create_app(settings, stores=stores)) as client:
        def ask(anon: str) -> Any:
            return client.get(f"/v1/recommendations?anonymous_id={anon}",
                              headers=visitor(key, anon=anon))

        assert [ask(ANON).status_code for _ in range(2)] == [200, 200]
        third = ask(ANON)
        assert third.status_code == 429
        assert third.json()["error"]["details"]["scope"] == "visitor"
        assert int(third.headers["retry-after"]) >= 1
        assert ask(OTHER_ANON).status_code == 200  # the origin's third request
        fourth = ask("anon-" + "c" * 22)
        assert fourth.status_code == 429
        assert fourth.json()["error"]["details"]["scope"] == "origin"


def test_the_served_snippet_is_the_npm_source_and_small(client: Any) -> None:
    served = client.get("/sdk/personify.js")
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("application/javascript")
    source = (REPO / "sdk" / "js" / "personify.js").read_text(encoding="utf-8")
    assert served.text == source, "run `make sdk` to copy sdk/js/personify.js into the package"
    assert len(gzip.compress(source.encode(), 9)) < 8 * 1024


def test_the_demo_shop_exists_only_in_demo_mode(client: Any) -> None:
    answer = client.get("/demo-shop")
    assert answer.status_code == 404
    assert "demo mode" in answer.json()["error"]["message"]


def test_the_demo_shop_escapes_what_the_catalogue_holds(
    database_url: str, stores: Stores, tenant_a: TenantKeys
) -> None:
    from fastapi.testclient import TestClient

    from personify.api import create_app
    from personify.domain.items import Item
    from personify.settings import DEMO_BROWSER_KEY

    stores.catalog.upsert("default", [Item(item_id="x1", title="<img src=x onerror=alert(1)>")])
    with TestClient(create_app(Settings(database_url=database_url, demo=True),
                               stores=stores)) as client:
        home = client.get("/demo-shop")
        item = client.get("/demo-shop/item/x1")
        assert home.status_code == item.status_code == 200
        for page in (home.text, item.text):
            assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
            assert f'data-key="{DEMO_BROWSER_KEY}"' in page and "/sdk/personify.js" in page
        assert client.get("/demo-shop/shop.js").status_code == 200
        assert client.get("/demo-shop/item/nope").status_code == 404
        # the demo's public key is a browser key: it cannot read the catalogue
        assert client.get("/v1/items", headers={"X-API-Key": DEMO_BROWSER_KEY}).status_code == 403


def test_session_only_recommendations_take_a_browser_key_without_a_visitor(
    client: Any, browser_key: str
) -> None:
    body = {"items": [{"item_id": "i1", "type": "view"}], "n": 3}
    ok = client.post("/v1/recommendations/session", json=body,
                     headers={"X-API-Key": browser_key, "Origin": SHOP})
    assert ok.status_code == 200, ok.text
    assert ok.headers["access-control-allow-origin"] == SHOP
    evil = client.post("/v1/recommendations/session", json=body,
                       headers={"X-API-Key": browser_key, "Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert evil.json()["error"]["field"] == "Origin"


def _web_key() -> Any:
    from datetime import UTC, datetime

    from personify.domain.keys import ApiKey

    return ApiKey(key_id="k-web", tenant="default", name="web", scopes=frozenset({Scope.BROWSER}),
                  created_at=datetime.now(UTC))


def test_browser_buckets_in_process_spend_all_or_nothing() -> None:
    from personify.api.rate_limit import LocalRateLimiter, RateLimits
    from personify.domain.errors import RateLimited

    now = [0.0]
    limiter = LocalRateLimiter(RateLimits(), clock=lambda: now[0])
    key = _web_key()
    visitor_a = [("visitor:a", 2, "visitor"), ("origin:o", 3, "origin")]
    limiter.check_buckets(key, visitor_a)
    limiter.check_buckets(key, visitor_a)
    with pytest.raises(RateLimited) as refused:
        limiter.check_buckets(key, visitor_a)
    assert refused.value.details["scope"] == "visitor"
    # the refused request spent nothing from the origin's bucket: one more visitor fits
    limiter.check_buckets(key, [("visitor:b", 2, "visitor"), ("origin:o", 3, "origin")])
    with pytest.raises(RateLimited):
        limiter.check_buckets(key, [("visitor:c", 2, "visitor"), ("origin:o", 3, "origin")])
    now[0] += 30.0  # half a minute refills one request of a 2-per-minute bucket
    limiter.check_buckets(key, [("visitor:a", 2, "visitor")])


@pytest.mark.redis
def test_browser_buckets_are_shared_through_redis(redis_url: str, redis_prefix: str) -> None:
    from personify.api.rate_limit import RateLimits, RedisRateLimiter
    from personify.domain.errors import RateLimited

    key = _web_key()
    one = RedisRateLimiter(redis_url, redis_prefix, RateLimits())
    two = RedisRateLimiter(redis_url, redis_prefix, RateLimits())
    buckets = [("visitor:a", 2, "visitor"), ("origin:o", 0, "origin")]
    one.check_buckets(key, buckets)
    two.check_buckets(key, buckets)
    with pytest.raises(RateLimited) as refused:
        one.check_buckets(key, buckets)
    assert refused.value.details["scope"] == "visitor"
    import asyncio

    with pytest.raises(RateLimited):  # the awaited path of the API dependency
        asyncio.run(two.acheck_buckets(key, buckets))
    asyncio.run(two.acheck_buckets(key, [("visitor:b", 2, "visitor")]))
    one.close()
    two.close()
