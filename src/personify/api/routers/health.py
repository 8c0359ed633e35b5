"""``/health`` (the process answers) and ``/ready`` (the database answers; whether the online
state is still warming up). No key needed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from personify.api.deps import SettingsDep, StoresDep, runtime_of
from personify.api.responses import JSONBody
from personify.api.routing import KeyFirstRoute

router = APIRouter(tags=["health"], route_class=KeyFirstRoute)


@router.get("/health", summary="Liveness: the process is up")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: the database answers a query; 'degraded' when the online state runs on "
    "the in-process fallback (Redis configured but unavailable)",
)
def ready(stores: StoresDep, settings: SettingsDep, request: Request) -> Response:
    try:
        stores.keys.list(settings.default_tenant)
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        body = {"status": "unavailable", "checks": {"database": type(exc).__name__}}
        return JSONBody(body, status_code=503)
    checks = {"database": "ok"}
    engine = runtime_of(request).engine
    thread = engine.warm_up_thread
    # the in-process online state replays recent history in the background after a start;
    # until then a user's stored history stands in (served, but not yet from live state)
    checks["online_state"] = "warming up" if thread is not None and thread.is_alive() else "ok"
    state = engine.state
    if getattr(state, "degraded", False) or (
        settings.redis_url and state is not None and not hasattr(state, "degraded")
    ):
        # Redis is configured but this process serves from its in-process fallback: it answers,
        # but its live state is not shared with the other workers
        checks["online_state"] = "degraded: in-process fallback (Redis unavailable)"
        return JSONBody({"status": "degraded", "checks": checks})
    return JSONBody({"status": "ready", "checks": checks})
