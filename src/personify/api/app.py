"""The application factory: builds the runtime
(:func:`personify.runtime.container.build_runtime`) and the HTTP layer over it.

A request reaches the application through ``app.state.runtime`` (the services) and
``app.state.settings``; the dependencies in ``personify.api.deps`` read them. The HTTP layer's
own objects are ``app.state.rate_limiter`` and ``app.state.closers`` (callables run at shutdown,
newest first, before the runtime closes: the rate limiter, the dashboard).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI

import personify
from personify.api.cors import BrowserCors
from personify.api.errors import install_error_handlers
from personify.api.idempotency import IdempotencyKeys
from personify.api.limits import BodySizeLimit
from personify.api.observability import RequestObservability
from personify.api.openapi import install_openapi
from personify.api.path_ids import EncodedSlashes, UnescapedPathIds
from personify.api.rate_limit import build_rate_limiter
from personify.api.routers import register_routers
from personify.domain.errors import ConfigurationError
from personify.ingestion import EventIngestor
from personify.runtime.container import Runtime, build_runtime
from personify.settings import Settings
from personify.storage.registry import Stores

DESCRIPTION = (
    "Self-hosted personalization engine. Authenticate with `Authorization: Bearer <key>` or "
    "`X-API-Key`. Errors are `{\"error\": {code, message, field, accepted}}`. "
    "A `POST` / `PATCH` sent with an `Idempotency-Key` header is done once: a repeat with the "
    "same key and request gets the first answer (docs/api.md, Idempotency keys). "
    "A Segment-compatible tracking endpoint lives under `/segment/v1/...`."
)


def check_startable(settings: Settings, stores: Stores) -> None:
    """Refuse to serve outside demo mode when nobody could authenticate."""
    if settings.demo or settings.admin_key is not None:
        return
    if any(key.revoked_at is None for key in stores.keys.list()):
        return
    raise ConfigurationError(
        "no API key is configured: create one with `personify keys create --scope admin`, "
        "set PERSONIFY_ADMIN_KEY (at least 24 characters), or run in demo mode "
        "(PERSONIFY_DEMO=1)",
        field="admin_key",
        accepted="an existing API key, PERSONIFY_ADMIN_KEY, or PERSONIFY_DEMO=1",
    )


def create_app(
    settings: Settings,
    *,
    stores: Stores | None = None,
    ingestor: EventIngestor | None = None,
    online_state: Any = None,
    segment_track_map: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """Build the API. Opens (and migrates) ``settings.database_url`` unless ``stores`` is given;
    raises ConfigurationError when no key could ever authenticate (outside demo mode).
    ``clock`` drives messaging (quiet hours, caps, journeys); the wall clock by default.
    The runtime starts with the app (its lifespan) and closes with it."""
    runtime = build_runtime(
        settings, stores=stores, ingestor=ingestor, online_state=online_state, clock=clock,
        segment_track_map=segment_track_map,
    )
    try:
        check_startable(settings, runtime.stores)
    except ConfigurationError:
        runtime.close()
        raise
    return app_over(runtime)


def app_over(runtime: Runtime) -> FastAPI:
    """The HTTP layer over a built runtime (its lifespan starts and closes the runtime)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        # Objects made at import and start-up live for the whole process: keep them out of the
        # garbage collector's scans (fewer, shorter pauses on the ingestion hot path).
        gc.freeze()
        try:
            yield
        finally:
            for close in reversed(app.state.closers):
                close()
            runtime.close()

    app = FastAPI(
        title="Personify",
        version=personify.__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
        dependencies=[UnescapedPathIds],  # ids with an encoded "/" in /v1 paths (path_ids.py)
    )
    app.state.settings = runtime.settings
    app.state.runtime = runtime
    app.state.closers = []
    app.state.rate_limiter = build_rate_limiter(runtime.settings)  # used by the key dependencies
    app.state.closers.append(app.state.rate_limiter.close)
    install_error_handlers(app)
    # inside the body limit: a kept or replayed request never reads more than it allows
    app.add_middleware(IdempotencyKeys, runtime=runtime)
    app.add_middleware(BodySizeLimit, max_bytes=runtime.settings.max_request_bytes)
    app.add_middleware(EncodedSlashes)
    app.add_middleware(BrowserCors, allowed_origins=runtime.settings.allowed_origins)
    # outermost: the request id and the latency cover everything inside, body limits included
    app.add_middleware(RequestObservability, metrics=runtime.metrics)
    register_routers(app)
    install_openapi(app)
    return app
