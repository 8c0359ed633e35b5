"""``install_messaging(app)``: builds the messaging runtime
(:func:`personify.runtime.messaging_wiring.build_messaging`) for the app's stores, ingestor and
recommendation engine, mounts the messaging and tracking routers, listens to ingestion, and
(with ``messaging_enabled``) runs the outbox worker and the journey clock in a background thread
for the app's lifetime.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI

from personify.api.routers import messaging as messaging_router
from personify.api.routers import tracking as tracking_router
from personify.messaging.item_updates import ItemChangeWatcher
from personify.runtime.messaging_wiring import build_messaging
from personify.storage.registry import Stores


def install_messaging(app: FastAPI, *, clock: Callable[[], datetime] | None = None) -> None:
    """Wire messaging into an app built by ``create_app`` (call it before ``install_openapi``):
    ``app.state.messaging``, the routers, the ingestion listener, and the background worker
    when ``settings.messaging_enabled``."""
    runtime = build_messaging(
        app.state.settings, app.state.stores, app.state.ingestor, app.state.engine.service,
        clock=clock, consent_policy=lambda: getattr(app.state, "consent_policy", None),
    )
    app.state.messaging = runtime
    engine = getattr(app.state, "engine", None)
    if engine is not None:  # erasure reaches the messages of the person too
        engine.forgetters.append(runtime.state.forget)
        engine.forgetters.append(runtime.forget_in_campaigns)
    app.include_router(messaging_router.router)
    app.include_router(messaging_router.inbox_router)
    app.include_router(tracking_router.router)
    app.state.ingestor.add_listener(runtime.on_events)
    # price drops and restocks: every catalogue write of the app (PUT / PATCH / :bulk) is
    # compared with the stored item while a tenant has an item-update journey enabled
    stores: Stores = app.state.stores
    stores.catalog = ItemChangeWatcher(
        stores.catalog, runtime.record_item_changes, wants=runtime.wants_item_changes,
        clock=lambda: runtime.clock(),
    )
    enabled = bool(app.state.settings.messaging_enabled)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        async with inner(application) as value:
            if enabled:
                runtime.start()
            try:
                yield value
            finally:  # before the inner lifespan closes the stores the worker uses
                runtime.close()

    app.router.lifespan_context = lifespan
