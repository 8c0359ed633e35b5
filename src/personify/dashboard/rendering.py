"""Server-side rendering: one Jinja2 environment for the dashboard's own templates (HTML
autoescaping on) and :func:`render`, which adds what every page needs."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from personify.dashboard.i18n import LANG_COOKIE, Translator, negotiate
from personify.dashboard.state import engine

NAVIGATION = (
    ("overview", "/dashboard/"),
    ("users", "/dashboard/users"),
    ("items", "/dashboard/items"),
    ("models", "/dashboard/models"),
    ("segments", "/dashboard/segments"),
    ("experiments", "/dashboard/experiments"),
    ("messaging", "/dashboard/messaging"),
    ("pages", "/dashboard/pages"),
    ("settings", "/dashboard/settings"),
)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("personify.dashboard", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["navigation"] = NAVIGATION
    return env


def language(request: Request) -> str:
    return negotiate(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def translator(request: Request) -> Translator:
    return Translator(language(request))


def render(
    request: Request, template: str, *, status_code: int = 200, section: str = "", **context: Any
) -> HTMLResponse:
    """Render ``template`` with the translator ``t``, the session's CSRF token, the current
    section and whether the online engine is wired."""
    session = getattr(request.state, "dashboard_session", None)
    values = {
        "request": request,
        "t": translator(request),
        "lang": language(request),
        "session": session,
        "csrf_token": session.csrf_token if session is not None else "",
        "section": section,
        "engine_ready": engine(request) is not None,
        "path": request.url.path,
        **context,
    }
    html = environment().get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code)
