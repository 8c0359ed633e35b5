"""``/health`` (the process answers) and ``/ready`` (the database answers). No key needed."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from personify.api.deps import SettingsDep, StoresDep
from personify.api.responses import JSONBody

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process is up")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: the database answers a query")
def ready(stores: StoresDep, settings: SettingsDep) -> Response:
    try:
        stores.keys.list(settings.default_tenant)
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        body = {"status": "unavailable", "checks": {"database": type(exc).__name__}}
        return JSONBody(body, status_code=503)
    return JSONBody({"status": "ready", "checks": {"database": "ok"}})
