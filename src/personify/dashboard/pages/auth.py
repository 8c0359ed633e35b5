"""Logging in with an admin API key, logging out, and the language switch."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from personify.dashboard.i18n import LANG_COOKIE, LANGUAGES
from personify.dashboard.pages.common import page_router, safe_next
from personify.dashboard.rendering import render
from personify.dashboard.sessions import COOKIE_NAME, COOKIE_PATH
from personify.dashboard.state import authenticator, dashboard, session
from personify.domain.errors import PersonifyError
from personify.domain.keys import Scope

LOGIN_CSRF_COOKIE = "personify_login_csrf"
LANG_COOKIE_AGE = 365 * 24 * 3600

public = APIRouter(prefix="/dashboard", include_in_schema=False)
router = page_router()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_page(request: Request, *, error: str = "", status_code: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        status_code=status_code,
        login_csrf=token,
        error=error,
        next=safe_next(request.query_params.get("next")),
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="strict",
        secure=_secure(request), max_age=3600,
    )
    return response


@public.get("/login")
def login_form(request: Request, lang: str | None = None) -> Response:
    """The login page; ``?lang=ru`` switches the language before logging in."""
    if lang in LANGUAGES:
        response = RedirectResponse(
            f"/dashboard/login?next={request.query_params.get('next', '/dashboard/')}",
            status_code=303,
        )
        response.set_cookie(LANG_COOKIE, lang, path=COOKIE_PATH, max_age=LANG_COOKIE_AGE,
                            samesite="lax", secure=_secure(request))
        return response
    return _login_page(request)


@public.post("/login")
async def login(
    request: Request,
    key: Annotated[str, Form(max_length=512)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/dashboard/",
) -> Response:
    """Verify an admin key through the application's authenticator and open a session."""
    state = dashboard(request)
    client = request.client.host if request.client else "unknown"
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        return _login_page(request, error="login_expired", status_code=403)
    if state.throttle.blocked(client):
        return _login_page(request, error="login_throttled", status_code=429)
    try:
        api_key = await run_in_threadpool(authenticator(request).authenticate, key.strip())
    except PersonifyError:
        state.throttle.failed(client)
        return _login_page(request, error="login_failed", status_code=401)
    if not api_key.allows(Scope.ADMIN):
        state.throttle.failed(client)
        return _login_page(request, error="login_not_admin", status_code=403)
    state.throttle.succeeded(client)
    _, cookie = state.sessions.open(api_key)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE_NAME, cookie, path=COOKIE_PATH, httponly=True, samesite="lax",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    dashboard(request).sessions.close(session(request).session_id)
    response = RedirectResponse("/dashboard/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH)
    return response


@router.get("/lang/{language}")
def switch_language(request: Request, language: str, next: str | None = None) -> Response:
    """Remember the interface language and go back to the page."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if language in LANGUAGES:
        response.set_cookie(LANG_COOKIE, language, path=COOKIE_PATH, max_age=LANG_COOKIE_AGE,
                            samesite="lax", secure=_secure(request))
    return response
