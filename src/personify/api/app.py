"""The application factory: the edge that reads settings, opens the stores and wires services.

Everything a request needs is kept on ``app.state``: ``settings``, ``stores``, ``ingestor``
(add online-state updates with ``app.state.ingestor.add_listener(...)``), ``online_state``,
``authenticator``, ``erasure_check`` and ``segment_mapper``.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from typing import Any

from fastapi import FastAPI

import personify
from personify.api.deps import install_experiments
from personify.api.errors import install_error_handlers
from personify.api.insights_wiring import install_insights
from personify.api.limits import BodySizeLimit
from personify.api.messaging_wiring import install_messaging
from personify.api.networking_wiring import install_networking
from personify.api.openapi import install_openapi
from personify.api.path_ids import EncodedSlashes, UnescapedPathIds
from personify.api.rate_limit import build_rate_limiter
from personify.api.routers import register_routers
from personify.domain.errors import ConfigurationError
from personify.domain.events import EventTypes
from personify.ingestion import EventIngestor
from personify.runtime.auth import Authenticator, ForgettingKeyStore
from personify.runtime.engine import build_engine
from personify.runtime.erasure_check import CachedErasureCheck
from personify.runtime.identity import erase_subjects
from personify.runtime.segment.mapping import SegmentMapper
from personify.settings import DEMO_ADMIN_KEY, Settings
from personify.storage.registry import Stores, open_stores

DESCRIPTION = (
    "Self-hosted personalization engine. Authenticate with `Authorization: Bearer <key>` or "
    "`X-API-Key`. Errors are `{\"error\": {code, message, field, accepted}}`. "
    "A Segment-compatible tracking endpoint lives under `/segment/v1/...`."
)


def bootstrap_secrets(settings: Settings) -> list[str]:
    """The admin secrets accepted without a key record: the configured one, and the demo key."""
    secrets = [settings.admin_key.get_secret_value()] if settings.admin_key else []
    if settings.demo:
        secrets.append(DEMO_ADMIN_KEY)
    return secrets


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
    ``clock`` drives messaging (quiet hours, caps, journeys); the wall clock by default."""
    owns_stores = stores is None
    stores = stores if stores is not None else open_stores(settings.database_url)
    try:
        check_startable(settings, stores)
    except ConfigurationError:
        if owns_stores:
            stores.close()
        raise
    event_types = EventTypes(settings.custom_event_types)
    erasure_check = CachedErasureCheck(stores.erasures)
    if ingestor is None:
        ingestor = EventIngestor(stores.events, event_types=event_types, is_erased=erasure_check)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Objects made at import and start-up live for the whole process: keep them out of the
        # garbage collector's scans (fewer, shorter pauses on the ingestion hot path).
        gc.freeze()
        yield
        for close in reversed(app.state.closers):
            close()
        engine.close()
        if owns_stores:
            stores.close()

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
    app.state.settings = settings
    app.state.closers = []
    # callables run at shutdown, newest first, before the engine and the stores close
    app.state.stores = stores
    app.state.ingestor = ingestor
    engine = build_engine(settings, stores, ingestor, online_state=online_state)
    app.state.engine = engine
    app.state.privacy = engine.privacy
    app.state.erase_subjects = partial(erase_subjects, engine.privacy, erasure_check, engine=engine)
    # erase users / an anonymous id everywhere (used by the users routes and the dashboard)
    app.state.online_state = engine.state
    app.state.erasure_check = erasure_check
    app.state.authenticator = Authenticator(
        stores.keys, bootstrap_secrets=bootstrap_secrets(settings),
        default_tenant=settings.default_tenant,
    )
    # verified keys are cached for a moment; a revocation through this process ends it at once
    stores.keys = ForgettingKeyStore(stores.keys, app.state.authenticator)
    app.state.rate_limiter = build_rate_limiter(settings)  # used by the key dependencies
    app.state.closers.append(app.state.rate_limiter.close)
    track_map = {**settings.segment_track_map, **(segment_track_map or {})}
    app.state.segment_mapper = SegmentMapper(track_map, event_types.accepted)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(EncodedSlashes)
    register_routers(app)
    install_experiments(app)
    install_messaging(app, clock=clock)
    install_insights(app, clock=clock)
    install_networking(app, clock=clock)
    install_openapi(app)
    return app
