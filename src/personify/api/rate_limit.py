"""Request rate limits per API key and per tenant: token buckets, in process or shared in Redis.

Settings (all "requests per minute", ``0`` = no limit):

* ``rate_limit_per_minute`` — every key (the bootstrap / demo admin key included);
* ``rate_limit_overrides`` — ``{"<key id or key name>": n}``: a key's own limit instead (the key id
  wins over the name; ``0`` exempts that key);
* ``rate_limit_tenant_per_minute`` — all keys of one tenant together.

A limit of ``n`` per minute is a token bucket that holds ``n`` requests and refills ``n / 60`` per
second: a key may spend its minute's budget in a burst, then one request per ``60 / n`` seconds.
It is kept as GCRA (one "theoretical arrival time" per bucket), which is exactly that bucket.

Only routes that authenticate with a key are limited (the key dependency calls
:func:`within_rate_limit`); ``/health``, ``/ready``, the dashboard and tracking links are not.
An over-limit request gets ``429`` with ``Retry-After`` (whole seconds) and the usual error body.

Without Redis each worker process keeps its own buckets (the effective limit is ``workers`` times
higher; the check is a couple of dict operations, no lock, no I/O). With ``redis_url`` set the
buckets live in Redis and all processes share them: one ``EVALSHA`` per request, the script reads
Redis' own clock. When Redis fails, the process falls back to its own buckets (a logged warning),
tries Redis again after :data:`REDIS_RETRY_S`, and never fails a request because of the limiter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from personify.domain.errors import RateLimited
from personify.domain.keys import ApiKey

if TYPE_CHECKING:
    from fastapi import Request

    from personify.settings import Settings

log = logging.getLogger(__name__)

REDIS_RETRY_S = 5.0
"""After a Redis failure, buckets are kept in process for this long before Redis is tried again."""
REDIS_TIMEOUT_S = 0.25
"""Socket timeout of the limiter's Redis calls (a stuck Redis costs a request at most this)."""

_SLACK_S = 1e-6
"""Float rounding allowance: ``n`` requests of ``60 / n`` seconds each fill exactly a minute."""
_ACCEPTED = "at most {limit} requests per minute {per}; retry after the Retry-After seconds"


@dataclass(frozen=True)
class RateLimits:
    """The configured limits, in requests per minute (0 = none)."""

    per_key: int = 0
    per_tenant: int = 0
    overrides: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(
            per_key=settings.rate_limit_per_minute,
            per_tenant=settings.rate_limit_tenant_per_minute,
            overrides=dict(settings.rate_limit_overrides),
        )

    @property
    def enabled(self) -> bool:
        return bool(self.per_key or self.per_tenant or any(self.overrides.values()))

    def for_key(self, key: ApiKey) -> int:
        """The per-minute limit of ``key``: its override (by key id, then name) or the default."""
        overrides = self.overrides
        if overrides:
            limit = overrides.get(key.key_id)
            if limit is None:
                limit = overrides.get(key.name)
            if limit is not None:
                return limit
        return self.per_key


def _refusal(key: ApiKey, limit: int, wait_s: float, *, tenant: bool) -> RateLimited:
    per = f"for tenant {key.tenant!r}" if tenant else "for this API key"
    return RateLimited(
        f"rate limit exceeded: {limit} requests per minute {per}",
        retry_after_s=wait_s,
        field="Authorization",
        accepted=_ACCEPTED.format(limit=limit, per="per tenant" if tenant else "per key"),
        details={
            "limit_per_minute": limit,
            "scope": "tenant" if tenant else "key",
            "retry_after_s": round(wait_s, 3),
        },
    )


def _bucket_refusal(key: ApiKey, bucket: Bucket, wait_s: float) -> RateLimited:
    _, limit, scope = bucket
    return RateLimited(
        f"rate limit exceeded: {limit} requests per minute for this {scope} with a browser key",
        retry_after_s=wait_s,
        field="Origin" if scope == "origin" else "X-Personify-Anonymous-Id",
        accepted=_ACCEPTED.format(limit=limit, per=f"per {scope}"),
        details={"limit_per_minute": limit, "scope": scope, "retry_after_s": round(wait_s, 3)},
    )


Bucket = tuple[str, int, str]
"""An extra bucket of a request: (name within the tenant, requests per minute, what it counts:
``visitor`` / ``origin``) — the browser keys' limits (docs/web.md)."""


class RateLimiter(Protocol):
    """Raises :class:`RateLimited` when ``key`` (or its tenant) is over its limit."""

    limits: RateLimits

    def check(self, key: ApiKey) -> None: ...

    def check_buckets(self, key: ApiKey, buckets: list[Bucket]) -> None: ...

    async def acheck_buckets(self, key: ApiKey, buckets: list[Bucket]) -> None: ...

    async def acheck(self, key: ApiKey) -> None: ...

    def close(self) -> None: ...


class LocalRateLimiter:
    """Token buckets in this process. Lock-free: on the event loop nothing interleaves; from
    several threads a race can at worst let one extra request through."""

    def __init__(
        self, limits: RateLimits, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._tat: dict[tuple[str, str], float] = {}
        # bucket -> theoretical arrival time: when the bucket would be full again

    def check(self, key: ApiKey) -> None:
        limits = self.limits
        per_key = limits.for_key(key)
        per_tenant = limits.per_tenant
        if not (per_key or per_tenant):
            return
        now = self._clock()
        tats = self._tat
        key_bucket = (key.tenant, key.key_id)
        tenant_bucket = (key.tenant, "")
        new_key = new_tenant = 0.0
        if per_key:
            interval = 60.0 / per_key
            new_key = max(tats.get(key_bucket, now), now) + interval
            wait = new_key - now - 60.0  # the bucket holds a minute's worth
            if wait > _SLACK_S:
                raise _refusal(key, per_key, wait, tenant=False)
        if per_tenant:
            interval = 60.0 / per_tenant
            new_tenant = max(tats.get(tenant_bucket, now), now) + interval
            wait = new_tenant - now - 60.0
            if wait > _SLACK_S:
                raise _refusal(key, per_tenant, wait, tenant=True)
        if per_key:
            tats[key_bucket] = new_key
        if per_tenant:
            tats[tenant_bucket] = new_tenant

    async def acheck(self, key: ApiKey) -> None:
        self.check(key)

    def check_buckets(self, key: ApiKey, buckets: list[Bucket]) -> None:
        """Spend one request from each of ``buckets`` (of ``key``'s tenant), or none."""
        now = self._clock()
        news: list[tuple[tuple[str, str], float]] = []
        for bucket in buckets:
            name, limit, _ = bucket
            if not limit:
                continue
            slot = (key.tenant, name)
            new = max(self._tat.get(slot, now), now) + 60.0 / limit
            wait = new - now - 60.0
            if wait > _SLACK_S:
                raise _bucket_refusal(key, bucket, wait)
            news.append((slot, new))
        if len(self._tat) > 100_000:  # many visitors: forget buckets that are full again
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        for slot, new in news:
            self._tat[slot] = new

    async def acheck_buckets(self, key: ApiKey, buckets: list[Bucket]) -> None:
        self.check_buckets(key, buckets)

    def close(self) -> None:
        self._tat.clear()


# KEYS: bucket keys; ARGV: per bucket, the emission interval and the capacity in microseconds.
# Returns {0, 0} (allowed; every bucket advanced) or {index of the first refusing bucket, wait in
# microseconds} (nothing spent). Integers are written with %d: Lua's tostring would round them.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local news = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local capacity = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new = tat + interval
  local wait = new - now - capacity
  if wait > 0 then return {i, wait} end
  news[i] = new
end
for i = 1, #KEYS do
  local ttl = math.max(1, math.ceil((news[i] - now) / 1000))
  redis.call('SET', KEYS[i], string.format('%d', news[i]), 'PX', ttl)
end
return {0, 0}
"""


class RedisRateLimiter:
    """Token buckets in Redis, shared by every process using the same ``redis_url`` / prefix;
    keys ``{prefix}:_ratelimit:{<tenant>}:key:<key id>`` and ``...:tenant`` (the braces are a
    Redis Cluster hash tag, so both buckets of a request sit in one slot)."""

    def __init__(
        self,
        url: str,
        prefix: str,
        limits: RateLimits,
        *,
        fallback: LocalRateLimiter | None = None,
        retry_s: float = REDIS_RETRY_S,
        timeout_s: float = REDIS_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.limits = limits
        self.fallback = fallback if fallback is not None else LocalRateLimiter(limits)
        self._url, self._prefix = url, prefix
        self._retry_s, self._timeout_s, self._clock = retry_s, timeout_s, clock
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._script = self._client.register_script(_GCRA)
        self._async: tuple[asyncio.AbstractEventLoop, Any, Any] | None = None
        self._down_until = 0.0
        self._down = False

    def _plan(self, key: ApiKey) -> tuple[list[str], list[int], list[tuple[int, bool]]] | None:
        per_key = self.limits.for_key(key)
        per_tenant = self.limits.per_tenant
        if not (per_key or per_tenant):
            return None
        base = f"{self._prefix}:_ratelimit:{{{key.tenant}}}:"
        keys: list[str] = []
        args: list[int] = []
        meta: list[tuple[int, bool]] = []
        for limit, name, is_tenant in (
            (per_key, f"key:{key.key_id}", False), (per_tenant, "tenant", True)
        ):
            if limit:
                keys.append(base + name)
                args += [max(1, 60_000_000 // limit), 60_000_000]  # floor: n fit a minute
                meta.append((limit, is_tenant))
        return keys, args, meta

    def _verdict(self, key: ApiKey, meta: list[tuple[int, bool]], reply: Any) -> None:
        index, wait_us = int(reply[0]), int(reply[1])
        if self._down:
            self._down = False
            log.warning("rate limiter: Redis answers again; buckets are shared again")
        if index:
            limit, is_tenant = meta[index - 1]
            raise _refusal(key, limit, wait_us / 1e6, tenant=is_tenant)

    def _failed(self, exc: Exception) -> None:
        self._down_until = self._clock() + self._retry_s
        if not self._down:
            self._down = True
            log.warning(
                "rate limiter: Redis failed (%s: %s); limiting in this process only, Redis is "
                "tried again every %.0f s", type(exc).__name__, exc, self._retry_s,
            )

    def _shared_plan(
        self, key: ApiKey
    ) -> tuple[list[str], list[int], list[tuple[int, bool]]] | None:
        """The Redis script's arguments, or None when this key is not limited or Redis is
        known to be down (then the in-process bucket has decided)."""
        plan = self._plan(key)
        if plan is not None and self._down and self._clock() < self._down_until:
            self.fallback.check(key)
            return None
        return plan

    def _fall_back(self, key: ApiKey, exc: Exception) -> None:
        """Any Redis / network failure: never fail the request, limit in this process."""
        self._failed(exc)
        self.fallback.check(key)

    def check(self, key: ApiKey) -> None:
        plan = self._shared_plan(key)
        if plan is None:
            return
        keys, args, meta = plan
        try:
            reply = self._script(keys=keys, args=args)
        except Exception as exc:
            self._fall_back(key, exc)
            return
        self._verdict(key, meta, reply)

    async def acheck(self, key: ApiKey) -> None:
        plan = self._shared_plan(key)
        if plan is None:
            return
        keys, args, meta = plan
        try:
            reply = await self._async_script()(keys=keys, args=args)
        except Exception as exc:
            self._fall_back(key, exc)
            return
        self._verdict(key, meta, reply)

    def _bucket_args(
        self, key: ApiKey, buckets: list[Bucket]
    ) -> tuple[list[str], list[int], list[Bucket]]:
        base = f"{self._prefix}:_ratelimit:{{{key.tenant}}}:"
        live = [b for b in buckets if b[1]]
        args: list[int] = []
        for _, limit, _ in live:
            args += [max(1, 60_000_000 // limit), 60_000_000]
        return [base + "b:" + name for name, _, _ in live], args, live

    def _bucket_verdict(self, key: ApiKey, live: list[Bucket], reply: Any) -> None:
        index, wait_us = int(reply[0]), int(reply[1])
        if index:
            raise _bucket_refusal(key, live[index - 1], wait_us / 1e6)

    def check_buckets(self, key: ApiKey, buckets: list[Bucket]) -> None:
        keys, args, live = self._bucket_args(key, buckets)
        if not keys:
            return
        if self._down and self._clock() < self._down_until:
            self.fallback.check_buckets(key, buckets)
            return
        try:
            reply = self._script(keys=keys, args=args)
        except Exception as exc:
            self._failed(exc)
            self.fallback.check_buckets(key, buckets)
            return
        self._bucket_verdict(key, live, reply)

    async def acheck_buckets(self, key: ApiKey, buckets: list[Bucket]) -> None:
        keys, args, live = self._bucket_args(key, buckets)
        if not keys:
            return
        if self._down and self._clock() < self._down_until:
            self.fallback.check_buckets(key, buckets)
            return
        try:
            reply = await self._async_script()(keys=keys, args=args)
        except Exception as exc:
            self._failed(exc)
            self.fallback.check_buckets(key, buckets)
            return
        self._bucket_verdict(key, live, reply)

    def _async_script(self) -> Any:
        """The script on an asyncio client of the running loop (a client is bound to its loop)."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            client = aioredis.Redis.from_url(
                self._url, socket_timeout=self._timeout_s,
                socket_connect_timeout=self._timeout_s, retry=Retry(NoBackoff(), 0),
            )
            self._async = (loop, client, client.register_script(_GCRA))
        return self._async[2]

    def close(self) -> None:
        self._client.close()
        self._async = None  # its connections close with their event loop


def build_rate_limiter(settings: Settings) -> RateLimiter:
    """Redis-shared buckets when ``redis_url`` is set and a limit is configured, else local."""
    limits = RateLimits.from_settings(settings)
    browser = (settings.rate_limit_browser_visitor_per_minute
               or settings.rate_limit_browser_origin_per_minute)
    if settings.redis_url and (limits.enabled or browser):
        try:
            return RedisRateLimiter(settings.redis_url, settings.redis_prefix, limits)
        except ImportError:
            log.warning("rate limiter: the redis package is not installed; limiting per process")
    return LocalRateLimiter(limits)


def within_rate_limit_sync(request: Request, key: ApiKey) -> ApiKey:
    """:func:`within_rate_limit` for a synchronous dependency (run in a worker thread)."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        try:
            limiter.check(key)
        except RateLimited as exc:
            _count_refusal(request, exc)
            raise
    return key


async def within_rate_limit(request: Request, key: ApiKey) -> ApiKey:
    """``key`` if it (and its tenant) may make one more request, else :class:`RateLimited`.

    Called once per authenticated request; answers from memory without Redis (a few
    microseconds), with one Redis round trip (awaited, never blocking the loop) with it."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        try:
            await limiter.acheck(key)
        except RateLimited as exc:
            _count_refusal(request, exc)
            raise
    return key


def _count_refusal(request: Request, exc: RateLimited) -> None:
    """``personify_rate_limit_rejections_total{limit="key"|"tenant"}``."""
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        limit = str((exc.details or {}).get("scope", "key"))
        runtime.metrics.rate_limited.labels(limit).inc()

