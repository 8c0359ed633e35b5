"""Rate limits per API key and per tenant: 429 with Retry-After and the usual error body, per-key
overrides, exempt routes, token-bucket refill, and buckets shared through Redis by several app
instances (with a fall-back to in-process buckets when Redis fails)."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI

from personify.api import create_app
from personify.api.rate_limit import (
    LocalRateLimiter,
    RateLimits,
    RedisRateLimiter,
    build_rate_limiter,
)
from personify.domain.errors import RateLimited
from personify.domain.keys import ApiKey, Scope
from personify.settings import DEMO_ADMIN_KEY, Settings
from personify.storage.registry import Stores

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from conftest import TenantKeys


def _app(stores: Stores, **settings: Any) -> FastAPI:
    return create_app(Settings(database_url="memory://", **settings), stores=stores)


@pytest.fixture
def limited(stores: Stores, tenant_a: TenantKeys, tenant_b: TenantKeys) -> Iterator[Any]:
    """``limited(**settings)`` -> a TestClient of an app with those rate-limit settings."""
    with ExitStack() as stack:
        def make(**settings: Any) -> TestClient:
            return stack.enter_context(TestClient(_app(stores, **settings)))

        yield make


def _key(key_id: str = "k1", tenant: str = "default", name: str = "app") -> ApiKey:
    return ApiKey(key_id=key_id, tenant=tenant, name=name, scopes=frozenset({Scope.SERVE}),
                  created_at=datetime.now(UTC))


def _assert_limited(response: httpx.Response, *, limit: int, scope: str) -> float:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["field"] == "Authorization"
    assert f"at most {limit} requests per minute per {scope}" in error["accepted"]
    assert error["details"]["scope"] == scope
    assert error["details"]["limit_per_minute"] == limit
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    return float(error["details"]["retry_after_s"])


# --- in process ----------------------------------------------------------------------------


def test_a_key_over_its_limit_gets_429_with_retry_after(
    limited: Any, tenant_a: TenantKeys
) -> None:
    client = limited(rate_limit_per_minute=3)
    headers = tenant_a.headers("serve")
    assert [client.get("/v1/items", headers=headers).status_code for _ in range(3)] == [200] * 3
    refused = client.get("/v1/items", headers=headers)
    wait = _assert_limited(refused, limit=3, scope="key")
    # a full bucket of 3 per minute refills one request every 20 s
    assert 19 < wait <= 20
    assert refused.headers["Retry-After"] == "20"
    # other keys (same tenant or not) have their own buckets
    assert client.get("/v1/items", headers=tenant_a.headers("admin")).status_code == 200
    assert client.get("/v1/items", headers=tenant_a.headers("admin")).status_code == 200


def test_the_bucket_is_per_key_not_per_route(limited: Any, tenant_a: TenantKeys) -> None:
    client = limited(rate_limit_per_minute=2)
    admin = tenant_a.headers("admin")
    assert client.get("/v1/items", headers=admin).status_code == 200
    assert client.get("/v1/users", headers=admin).status_code == 200
    _assert_limited(client.get("/v1/keys", headers=admin), limit=2, scope="key")


def test_refused_and_unauthenticated_requests_are_not_limited_by_someone_elses_key(
    limited: Any, tenant_a: TenantKeys
) -> None:
    client = limited(rate_limit_per_minute=1)
    assert client.get("/v1/items", headers=tenant_a.headers("serve")).status_code == 200
    assert client.get("/v1/items", headers=tenant_a.headers("serve")).status_code == 429
    # no key: 401 as always (authentication comes first), not 429
    assert client.get("/v1/items").status_code == 401
    assert client.get("/v1/items", headers={"X-API-Key": "pfy_nope_nope"}).status_code == 401


def test_the_tenant_limit_spans_its_keys_and_no_other_tenant(
    limited: Any, tenant_a: TenantKeys, tenant_b: TenantKeys
) -> None:
    client = limited(rate_limit_tenant_per_minute=4)
    codes = [
        client.get("/v1/items", headers=tenant_a.headers(scope)).status_code
        for scope in ("serve", "admin", "serve", "admin")
    ]
    assert codes == [200] * 4
    _assert_limited(
        client.get("/v1/items", headers=tenant_a.headers("admin")), limit=4, scope="tenant"
    )
    assert client.get("/v1/items", headers=tenant_b.headers("serve")).status_code == 200


def test_overrides_by_key_name_and_key_id(
    limited: Any, stores: Stores, tenant_a: TenantKeys
) -> None:
    serve_key = next(k for k in stores.keys.list("default") if k.name == "default serve")
    client = limited(
        rate_limit_per_minute=1,
        rate_limit_overrides={"default admin": 0, serve_key.key_id: 2},
    )
    admin = tenant_a.headers("admin")
    assert [client.get("/v1/items", headers=admin).status_code for _ in range(5)] == [200] * 5
    serve = tenant_a.headers("serve")
    assert [client.get("/v1/items", headers=serve).status_code for _ in range(2)] == [200] * 2
    _assert_limited(client.get("/v1/items", headers=serve), limit=2, scope="key")
    ingest = tenant_a.headers("ingest")  # no override: the default of 1
    assert client.get("/v1/items", headers=ingest).status_code == 403  # scope, after the limit
    _assert_limited(client.get("/v1/items", headers=ingest), limit=1, scope="key")


def test_the_bootstrap_key_and_the_segment_endpoint_are_limited(limited: Any) -> None:
    client = limited(rate_limit_per_minute=1, demo=True)
    demo = {"Authorization": f"Bearer {DEMO_ADMIN_KEY}"}
    assert client.get("/v1/items", headers=demo).status_code == 200
    _assert_limited(client.get("/v1/items", headers=demo), limit=1, scope="key")

    other = limited(rate_limit_overrides={"bootstrap": 1}, demo=True)
    call = {"userId": "u1", "event": "Product Viewed", "messageId": "m-1",
            "properties": {"product_id": "i1"}}
    assert other.post("/segment/v1/track", json=call, auth=(DEMO_ADMIN_KEY, "")).status_code == 200
    refused = other.post("/segment/v1/track", json={**call, "messageId": "m-2"},
                         auth=(DEMO_ADMIN_KEY, ""))
    _assert_limited(refused, limit=1, scope="key")


def test_health_ready_and_the_dashboard_are_exempt(stores: Stores, tmp_path: Path) -> None:
    from personify.dashboard import mount_dashboard

    app = _app(stores, demo=True, rate_limit_per_minute=1, rate_limit_tenant_per_minute=1,
               model_dir=str(tmp_path / "models"))
    mount_dashboard(app, results_dir=tmp_path / "results")
    demo = {"Authorization": f"Bearer {DEMO_ADMIN_KEY}"}
    with TestClient(app) as client:
        assert client.get("/v1/items", headers=demo).status_code == 200
        assert client.get("/v1/items", headers=demo).status_code == 429
        for _ in range(5):
            assert client.get("/health").status_code == 200
            assert client.get("/ready").status_code == 200
        page = client.get("/dashboard/login")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        login = client.post("/dashboard/login", follow_redirects=False, data={
            "key": DEMO_ADMIN_KEY, "csrf_token": token, "next": "/dashboard/"})
        assert login.status_code == 303, login.text
        for _ in range(3):
            assert client.get("/dashboard/").status_code == 200


def test_the_python_client_raises_rate_limited(limited: Any, tenant_a: TenantKeys) -> None:
    from personify.client._calls import error_from

    client = limited(rate_limit_per_minute=1)
    client.get("/v1/items", headers=tenant_a.headers("serve"))
    error = error_from(client.get("/v1/items", headers=tenant_a.headers("serve")))
    assert isinstance(error, RateLimited)
    assert error.retry_after_s == 60 and error.field == "Authorization"


def test_no_limit_configured_means_no_limit(limited: Any, tenant_a: TenantKeys) -> None:
    client = limited()
    headers = tenant_a.headers("serve")
    assert all(client.get("/v1/items", headers=headers).status_code == 200 for _ in range(30))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_token_bucket_refills_at_the_limit_rate() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(RateLimits(per_key=6), clock=clock)  # one every 10 s
    key = _key()
    for _ in range(6):  # a full bucket: a minute's worth at once
        limiter.check(key)
    with pytest.raises(RateLimited) as refused:
        limiter.check(key)
    assert refused.value.retry_after_s == pytest.approx(10.0)
    clock.now += 9.9
    with pytest.raises(RateLimited) as again:
        limiter.check(key)  # a refusal spends nothing: the wait only shrank
    assert again.value.retry_after_s == pytest.approx(0.1)
    clock.now += 0.1
    limiter.check(key)
    with pytest.raises(RateLimited):
        limiter.check(key)
    clock.now += 60  # idle for a minute: full again, not more
    for _ in range(6):
        limiter.check(key)
    with pytest.raises(RateLimited):
        limiter.check(key)


def test_odd_limits_admit_exactly_their_count() -> None:
    for limit in (1, 7, 13, 997, 10_000):
        limiter = LocalRateLimiter(RateLimits(per_key=limit), clock=FakeClock())
        for _ in range(limit):
            limiter.check(_key())
        with pytest.raises(RateLimited):
            limiter.check(_key())


def test_a_tenant_refusal_spends_nothing_from_the_key() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(RateLimits(per_key=2, per_tenant=1), clock=clock)
    limiter.check(_key("a"))
    with pytest.raises(RateLimited) as refused:
        limiter.check(_key("a"))
    assert refused.value.details["scope"] in {"key", "tenant"}
    with pytest.raises(RateLimited) as by_tenant:
        limiter.check(_key("b"))
    assert by_tenant.value.details["scope"] == "tenant"
    clock.now += 60
    limiter.check(_key("b"))  # key b's own bucket was not charged by its refusals


def test_settings_validate_limits() -> None:
    with pytest.raises(ValueError, match="rate_limit_per_minute"):
        Settings(rate_limit_per_minute=-1)
    with pytest.raises(ValueError, match="rate_limit_overrides"):
        Settings(rate_limit_overrides={"app": -5})
    assert isinstance(build_rate_limiter(Settings(redis_url=None, rate_limit_per_minute=5)),
                      LocalRateLimiter)


# --- shared through Redis ------------------------------------------------------------------


@pytest.mark.redis
def test_two_app_instances_share_one_budget_through_redis(
    stores: Stores, tenant_a: TenantKeys, tenant_b: TenantKeys, redis_url: str, redis_prefix: str
) -> None:
    settings = {"redis_url": redis_url, "redis_prefix": redis_prefix,
                "rate_limit_per_minute": 4, "rate_limit_tenant_per_minute": 7}
    first, second = _app(stores, **settings), _app(stores, **settings)
    assert isinstance(first.state.rate_limiter, RedisRateLimiter)
    with TestClient(first) as one, TestClient(second) as two:
        serve = tenant_a.headers("serve")
        codes = [c.get("/v1/items", headers=serve).status_code for c in (one, two, one, two)]
        assert codes == [200] * 4
        wait = _assert_limited(one.get("/v1/items", headers=serve), limit=4, scope="key")
        assert 14 < wait <= 15
        _assert_limited(two.get("/v1/items", headers=serve), limit=4, scope="key")
        # the tenant's budget of 7 is shared too: 4 spent by the serve key, 3 left for admin
        admin = tenant_a.headers("admin")
        codes = [c.get("/v1/items", headers=admin).status_code for c in (two, one, two)]
        assert codes == [200] * 3
        _assert_limited(one.get("/v1/items", headers=admin), limit=7, scope="tenant")
        assert two.get("/v1/items", headers=tenant_b.headers("serve")).status_code == 200
    # the buckets live under the configured prefix, with a TTL
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = sorted(k.decode() for k in client.scan_iter(match=f"{redis_prefix}:*"))
        assert any(k.endswith(":tenant") and "{default}" in k for k in keys), keys
        assert all(0 < client.pttl(k) <= 60_000 for k in keys)
    finally:
        client.close()


@pytest.mark.redis
def test_redis_buckets_refill_and_both_call_styles_share_them(
    redis_url: str, redis_prefix: str
) -> None:
    limits = RateLimits(per_key=60)  # one a second: the 60 calls take far less than that
    one = RedisRateLimiter(redis_url, redis_prefix, limits)
    two = RedisRateLimiter(redis_url, redis_prefix, limits)
    key = _key()

    async def scenario() -> float:
        for i in range(60):
            if i % 2:
                one.check(key)  # the synchronous client (Segment's dependency)
            else:
                await two.acheck(key)  # the asyncio client (the key dependency)
        with pytest.raises(RateLimited) as refused:
            await one.acheck(key)
        with pytest.raises(RateLimited):
            two.check(key)
        return refused.value.retry_after_s

    try:
        wait = asyncio.run(scenario())
        assert 0 < wait <= 1.0
        time.sleep(wait + 0.05)
        two.check(key)
        with pytest.raises(RateLimited):
            one.check(key)
    finally:
        one.close()
        two.close()


@pytest.mark.redis
def test_redis_takes_limits_beyond_a_microsecond_per_request(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RedisRateLimiter(redis_url, redis_prefix,
                               RateLimits(per_key=10**9, per_tenant=120_000_000))
    try:
        with caplog.at_level(logging.WARNING, logger="personify.api.rate_limit"):
            for _ in range(20):
                limiter.check(_key())
        assert not caplog.records  # answered by Redis, not by the fall-back
    finally:
        limiter.close()


def test_a_failing_redis_falls_back_to_process_buckets_with_a_warning(
    stores: Stores, tenant_a: TenantKeys, caplog: pytest.LogCaptureFixture
) -> None:
    # nothing listens on port 1: every Redis call fails at once
    app = _app(stores, redis_url="redis://127.0.0.1:1/0", rate_limit_per_minute=2)
    limiter = app.state.rate_limiter
    assert isinstance(limiter, RedisRateLimiter)
    headers = tenant_a.headers("serve")
    with caplog.at_level(logging.WARNING, logger="personify.api.rate_limit"), \
            TestClient(app) as client:
        codes = [client.get("/v1/items", headers=headers).status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # never failed by the limiter; still limited, per process
    warnings_logged = [r for r in caplog.records if "Redis failed" in r.getMessage()]
    assert len(warnings_logged) == 1  # once per outage, not per request


def test_redis_is_tried_again_after_the_retry_period() -> None:
    clock = FakeClock()
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", "p", RateLimits(per_key=100),
                               retry_s=5.0, clock=clock)
    calls: list[int] = []
    real = limiter._script

    def counting(**kwargs: Any) -> Any:
        calls.append(1)
        return real(**kwargs)

    limiter._script = counting  # type: ignore[assignment]
    try:
        limiter.check(_key())
        limiter.check(_key())
        assert len(calls) == 1  # down: the next calls stay in process
        clock.now += 5.1
        limiter.check(_key())
        assert len(calls) == 2
    finally:
        limiter.close()
