"""What every page router shares: the CSRF check, the router factory, form helpers."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request

from personify.dashboard.state import session

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


async def verify_csrf(request: Request) -> None:
    """Every state-changing request carries the session's CSRF token, as the form field
    ``csrf_token`` or the ``X-CSRF-Token`` header (htmx sends it); 403 otherwise."""
    if request.method not in UNSAFE_METHODS:
        return
    expected = session(request).csrf_token
    presented = request.headers.get(CSRF_HEADER)
    if not presented:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")


def page_router() -> APIRouter:
    """A router under ``/dashboard`` whose every route checks the CSRF token (the guard
    middleware has already required a session)."""
    return APIRouter(
        prefix="/dashboard", include_in_schema=False, dependencies=[Depends(verify_csrf)]
    )


def tenant(request: Request) -> str:
    return session(request).tenant


def safe_next(target: str | None, default: str = "/dashboard/") -> str:
    """A redirect target inside the dashboard only (no open redirect to another site)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/dashboard"):
        return default
    if target.startswith("//") or "\\" in target:
        return default
    return target


async def form_values(request: Request) -> dict[str, str]:
    """The submitted form as plain strings (files are ignored)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def form_lists(request: Request, name: str) -> list[str]:
    form = await request.form()
    return [v for v in form.getlist(name) if isinstance(v, str)]
