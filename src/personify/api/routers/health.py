"""``/health`` (liveness: the process answers) and ``/ready`` (readiness). No key needed.

``/ready`` answers 200 ``ready`` when the database answers a query, the warm-up finished and the
promoted model (if any) is loaded; 200 ``degraded`` when Redis is configured but this process
serves from its in-process fallback online state (it answers correctly, but its live state is
not shared with the other servers); 503 ``starting`` while the warm-up runs or the promoted model
is not loaded yet, 503 ``unavailable`` when the database does not answer. A load balancer sends
traffic to a server while ``/ready`` is 200 and restarts it when ``/health`` fails
(docs/deployment.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from personify.api.deps import SettingsDep, StoresDep, runtime_of
from personify.api.responses import JSONBody
from personify.api.routing import KeyFirstRoute
from personify.runtime.container import redis_fallback

router = APIRouter(tags=["health"], route_class=KeyFirstRoute)


@router.get("/health", summary="Liveness: the process is up")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: the database answers, the warm-up is done and the promoted model is "
    "loaded (503 'starting' until then); 'degraded' when the online state runs on the "
    "in-process fallback (Redis configured but unavailable)",
)
def ready(stores: StoresDep, settings: SettingsDep, request: Request) -> Response:
    try:
        stores.keys.list(settings.default_tenant)
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        body = {"status": "unavailable", "checks": {"database": type(exc).__name__}}
        return JSONBody(body, status_code=503)
    checks = {"database": "ok"}
    engine = runtime_of(request).engine
    tenant = settings.default_tenant
    starting = False
    # the warm-up loads the model and catalogue and (in-process state) replays recent history
    if engine.warm_up_thread is not None and not engine.warm_up_done.is_set():
        checks["warm_up"] = "running"
        starting = True
    else:
        checks["warm_up"] = "done"
    promoted = engine.models.promoted_version(tenant)
    served = engine.bundles.peek(tenant)
    if promoted is None:
        checks["model"] = "none promoted (popularity and live signals only)"
    elif served is None and not engine.bundles.tried(tenant):
        checks["model"] = "loading"
        starting = True
    elif served is None:
        checks["model"] = f"version {promoted} could not be loaded (see the log)"
    else:
        checks["model"] = f"serving {served.version}"
    checks["online_state"] = "ok"
    if redis_fallback(settings, engine.state):
        # Redis is configured but this process serves from its in-process fallback: it answers,
        # but its live state is not shared with the other servers
        checks["online_state"] = "degraded: in-process fallback (Redis unavailable)"
    if starting:
        return JSONBody({"status": "starting", "checks": checks}, status_code=503)
    if checks["online_state"] != "ok" or checks["model"].startswith("version"):
        return JSONBody({"status": "degraded", "checks": checks})
    return JSONBody({"status": "ready", "checks": checks})
