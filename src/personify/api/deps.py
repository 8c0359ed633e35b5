"""FastAPI dependencies as ``Annotated`` aliases: the stores, the ingestor, settings, the
runtime's services (engine, messaging, experiments, privacy) and the authenticated key of each
scope. Routers import these and nothing from ``app.state`` directly; everything but the
settings comes from the one ``app.state.runtime``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer

from personify.api.rate_limit import within_rate_limit, within_rate_limit_sync
from personify.domain import person_tokens, web
from personify.domain.errors import Forbidden
from personify.domain.keys import ApiKey, Scope
from personify.ingestion import EventIngestor
from personify.insights.service import InsightsService
from personify.networking.feed import FeedService
from personify.networking.service import Introductions, NetworkingService
from personify.privacy.runtime import PrivacyRuntime
from personify.runtime.auth import Authenticator, require_scope, secret_from_headers
from personify.runtime.container import Runtime
from personify.runtime.engine import Engine
from personify.runtime.erasure_check import CachedErasureCheck
from personify.runtime.experiments import ExperimentsRuntime
from personify.runtime.messaging import MessagingRuntime
from personify.settings import Settings
from personify.storage.registry import Stores

# Declared for the OpenAPI document (the "Authorize" button); the secret itself is read below
# so that every failure gets Personify's JSON error shape.
_bearer_scheme = HTTPBearer(auto_error=False, description="Authorization: Bearer <api key>")
_header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: <key>")


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def runtime_of(request: Request) -> Runtime:
    """The application's services (``app.state.runtime``, built by ``create_app``)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


async def get_stores(request: Request) -> Stores:
    return runtime_of(request).stores


async def get_ingestor(request: Request) -> EventIngestor:
    return runtime_of(request).ingestor


async def get_erasure_check(request: Request) -> CachedErasureCheck:
    return runtime_of(request).erasure_check


async def get_engine(request: Request) -> Engine:
    """Async, so FastAPI resolves it on the event loop (a sync dependency costs a thread hop
    per request)."""
    return runtime_of(request).engine


async def get_messaging(request: Request) -> MessagingRuntime:
    return runtime_of(request).messaging


async def get_experiments(request: Request) -> ExperimentsRuntime:
    return runtime_of(request).experiments


async def get_privacy(request: Request) -> PrivacyRuntime:
    return runtime_of(request).privacy


async def get_insights(request: Request) -> InsightsService:
    return runtime_of(request).insights


async def get_networking(request: Request) -> NetworkingService:
    return runtime_of(request).networking


async def get_feed(request: Request) -> FeedService:
    return runtime_of(request).feed


async def get_introductions(request: Request) -> Introductions:
    return Introductions(runtime_of(request).networking)


async def _documented(
    _bearer: Annotated[object, Depends(_bearer_scheme)],
    _header: Annotated[object, Depends(_header_scheme)],
) -> None:
    """Only makes the security schemes appear in OpenAPI."""


async def authenticated_key(
    request: Request, _: Annotated[None, Depends(_documented)]
) -> ApiKey:
    """The key presented by ``Authorization: Bearer`` or ``X-API-Key`` (401 if none / unknown).

    Runs on the event loop: the bootstrap key and recently verified keys are answered from
    memory; otherwise one indexed key lookup."""
    secret = secret_from_headers(
        request.headers.get("authorization"), request.headers.get("x-api-key")
    )
    auth: Authenticator = runtime_of(request).authenticator
    return await within_rate_limit(request, auth.authenticate(secret))


def segment_key(request: Request) -> ApiKey:
    """The key of a Segment-style call: Basic auth with the write key as user name, or Bearer;
    it must carry the ``ingest`` scope."""
    secret = secret_from_headers(
        request.headers.get("authorization"), request.headers.get("x-api-key"), allow_basic=True
    )
    auth: Authenticator = runtime_of(request).authenticator
    return require_scope(within_rate_limit_sync(request, auth.authenticate(secret)), Scope.INGEST)


async def beacon_key(request: Request) -> ApiKey:
    """The key of a ``navigator.sendBeacon`` call, which cannot set headers: the headers, else
    the ``api_key`` query parameter (a public browser or ingest key; docs/web.md)."""
    secret = secret_from_headers(
        request.headers.get("authorization"), request.headers.get("x-api-key")
    ) or request.query_params.get("api_key")
    auth: Authenticator = runtime_of(request).authenticator
    return await within_rate_limit(request, auth.authenticate(secret))


async def _beacon_access(
    request: Request, key: Annotated[ApiKey, Depends(beacon_key)]
) -> Access:
    return await _access(request, key, Scope.INGEST)


async def _ingest(key: Annotated[ApiKey, Depends(authenticated_key)]) -> ApiKey:
    return require_scope(key, Scope.INGEST)


async def _serve(key: Annotated[ApiKey, Depends(authenticated_key)]) -> ApiKey:
    return require_scope(key, Scope.SERVE)


async def _admin(key: Annotated[ApiKey, Depends(authenticated_key)]) -> ApiKey:
    return require_scope(key, Scope.ADMIN)


async def _metrics(key: Annotated[ApiKey, Depends(authenticated_key)]) -> ApiKey:
    return require_scope(key, Scope.METRICS)


def person_guard_for(request: Request, key: ApiKey) -> person_tokens.PersonGuard:
    """Who ``key`` may change in this request: everyone with the admin scope, otherwise only the
    person named by a valid ``X-Person-Token`` (docs/security.md)."""
    settings: Settings = request.app.state.settings
    master = settings.person_token_secret
    return person_tokens.PersonGuard(
        trusted=key.allows(Scope.ADMIN),
        secret=(person_tokens.tenant_secret(master.get_secret_value().encode(), key.tenant)
                if master is not None else None),
        token=request.headers.get(person_tokens.HEADER),
        now=time.time(),
    )


async def _person_guard(
    request: Request, key: Annotated[ApiKey, Depends(authenticated_key)]
) -> person_tokens.PersonGuard:
    return person_guard_for(request, key)


@dataclass(frozen=True)
class Access:
    """The key of a request that a ``browser`` key may also make, and — for a browser key —
    the one visitor it acts for (``visitor`` is None for server keys; docs/web.md)."""

    key: ApiKey
    visitor: web.Visitor | None = None

    @property
    def tenant(self) -> str:
        return self.key.tenant

    def check(self, user_id: str | None = None, anonymous_id: str | None = None,
              field: str = "user_id") -> None:
        """Forbidden when a browser key names anyone but its visitor (server keys: nothing)."""
        if self.visitor is not None:
            self.visitor.check(user_id, anonymous_id, field=field)


def own_origin(request: Request) -> str:
    """The origin of the API itself as this request reached it (a page it serves, such as the
    demo shop, calls it same-origin)."""
    host = request.headers.get("host", "")
    return f"{request.url.scheme}://{host}".lower()


async def visitor_of(request: Request, key: ApiKey) -> web.Visitor:
    """The visitor a browser-key request acts for, after the origin check and the per-visitor
    and per-origin rate limits (docs/web.md). The binding comes from the headers
    ``X-Personify-Anonymous-Id`` / ``X-Personify-User-Id`` + ``X-Person-Token``, or from the
    query parameters ``anonymous_id`` / ``user_id`` / ``person_token`` (GET requests and
    ``sendBeacon``, which cannot set headers)."""
    settings: Settings = request.app.state.settings
    origin = request.headers.get("origin")
    web.check_origin(origin, settings.allowed_origins.get(key.tenant, []), own_origin(request))
    headers, query = request.headers, request.query_params
    anonymous_id = headers.get(web.ANONYMOUS_HEADER) or query.get("anonymous_id")
    user_id = headers.get(web.USER_HEADER) or query.get("user_id")
    token = headers.get(person_tokens.HEADER) or query.get("person_token")
    if not anonymous_id and not user_id:
        raise Forbidden(
            "a browser key must name the current visitor", field=web.ANONYMOUS_HEADER,
            accepted=web.ANONYMOUS_ACCEPTED + " in X-Personify-Anonymous-Id (or ?anonymous_id=)",
        )
    if anonymous_id:
        web.check_anonymous_id(anonymous_id)
    if user_id:
        person_guard_for(request, key).check(user_id, token)
    visitor = web.Visitor(anonymous_id=anonymous_id or None, user_id=user_id or None)
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        await limiter.acheck_buckets(key, [
            ("visitor:" + visitor.key, settings.rate_limit_browser_visitor_per_minute, "visitor"),
            ("origin:" + (origin or "-").lower(), settings.rate_limit_browser_origin_per_minute,
             "origin"),
        ])
    return visitor


async def _serve_or_anonymous_browser(
    request: Request, key: Annotated[ApiKey, Depends(authenticated_key)]
) -> ApiKey:
    """A ``serve`` key, or a ``browser`` key from an allowed origin for a request that names
    nobody (session-only recommendations): the origin check and per-origin limit apply."""
    if not key.browser_only:
        return require_scope(key, Scope.SERVE)
    settings: Settings = request.app.state.settings
    origin = request.headers.get("origin")
    web.check_origin(origin, settings.allowed_origins.get(key.tenant, []), own_origin(request))
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        await limiter.acheck_buckets(key, [
            ("origin:" + (origin or "-").lower(), settings.rate_limit_browser_origin_per_minute,
             "origin"),
        ])
    return key


async def _access(request: Request, key: ApiKey, scope: Scope) -> Access:
    if key.browser_only:
        return Access(key, await visitor_of(request, key))
    return Access(require_scope(key, scope))


async def _ingest_access(
    request: Request, key: Annotated[ApiKey, Depends(authenticated_key)]
) -> Access:
    return await _access(request, key, Scope.INGEST)


async def _serve_access(
    request: Request, key: Annotated[ApiKey, Depends(authenticated_key)]
) -> Access:
    return await _access(request, key, Scope.SERVE)


async def _admin_access(
    request: Request, key: Annotated[ApiKey, Depends(authenticated_key)]
) -> Access:
    return await _access(request, key, Scope.ADMIN)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoresDep = Annotated[Stores, Depends(get_stores)]
IngestorDep = Annotated[EventIngestor, Depends(get_ingestor)]
ErasureCheckDep = Annotated[CachedErasureCheck, Depends(get_erasure_check)]
EngineDep = Annotated[Engine, Depends(get_engine)]
MessagingDep = Annotated[MessagingRuntime, Depends(get_messaging)]
ExperimentsDep = Annotated[ExperimentsRuntime, Depends(get_experiments)]
PrivacyDep = Annotated[PrivacyRuntime, Depends(get_privacy)]
InsightsDep = Annotated[InsightsService, Depends(get_insights)]
NetworkingDep = Annotated[NetworkingService, Depends(get_networking)]
IntroductionsDep = Annotated[Introductions, Depends(get_introductions)]
FeedDep = Annotated[FeedService, Depends(get_feed)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
IngestKey = Annotated[ApiKey, Depends(_ingest)]
"""A key with the ``ingest`` scope (or admin); its ``tenant`` is the request's tenant."""
ServeKey = Annotated[ApiKey, Depends(_serve)]
AdminKey = Annotated[ApiKey, Depends(_admin)]
MetricsKey = Annotated[ApiKey, Depends(_metrics)]
SegmentKey = Annotated[ApiKey, Depends(segment_key)]
BeaconAccess = Annotated[Access, Depends(_beacon_access)]
"""Like :data:`IngestAccess`, the key possibly in the ``api_key`` query parameter."""
IngestAccess = Annotated[Access, Depends(_ingest_access)]
"""An ``ingest`` key, or a ``browser`` key bound to its visitor."""
ServeAccess = Annotated[Access, Depends(_serve_access)]
"""A ``serve`` key, or a ``browser`` key bound to its visitor (its own recommendations)."""
AnonymousServeKey = Annotated[ApiKey, Depends(_serve_or_anonymous_browser)]
"""A ``serve`` key, or a ``browser`` key (allowed origin) for a request naming nobody."""
AdminAccess = Annotated[Access, Depends(_admin_access)]
"""An ``admin`` key, or a ``browser`` key bound to its visitor (routes that let a visitor do
one thing to themselves: merge their anonymous id into their own user at login)."""
PersonGuardDep = Annotated[person_tokens.PersonGuard, Depends(_person_guard)]
"""Whether the request's key may change a given person (admin, or a person token for them)."""
