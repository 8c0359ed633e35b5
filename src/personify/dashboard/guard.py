"""The gate in front of ``/dashboard``: every request but the login page and the static files
needs a live session, and every response carries the security headers.

It is ASGI middleware rather than a per-route dependency so that no route, present or future,
can be reached without logging in (an unknown path under ``/dashboard`` redirects to the login
page too, instead of revealing a 404).
"""

from __future__ import annotations

import time
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from personify.dashboard.sessions import COOKIE_NAME, Session, SessionStore
from personify.domain.keys import Scope as KeyScope
from personify.storage.ports import KeyStore

PREFIX = "/dashboard"
PUBLIC_PATHS = frozenset({f"{PREFIX}/login"})
PUBLIC_PREFIXES = (f"{PREFIX}/static/",)
KEY_RECHECK_SECONDS = 10.0
BOOTSTRAP_KEY_ID = "bootstrap"

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; frame-src 'self'; frame-ancestors 'none'; form-action 'self'; "
        b"base-uri 'none'; object-src 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


def cookies(scope: Scope) -> dict[str, str]:
    """The request's cookies (malformed ones are ignored)."""
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header is treated as no cookie
                continue
    return {k: m.value for k, m in jar.items()}


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class DashboardGuard:
    """Pure ASGI middleware: authentication of ``/dashboard`` and its response headers."""

    def __init__(self, app: ASGIApp, *, sessions: SessionStore, keys: Any) -> None:
        self.app = app
        self.sessions = sessions
        self.keys: KeyStore = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        send = self._with_headers(send, static=path.startswith(PUBLIC_PREFIXES))
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        session = self.sessions.get(cookies(scope).get(COOKIE_NAME))
        if session is not None and not await self._key_still_valid(session):
            self.sessions.close(session.session_id)
            session = None
        if session is None:
            await self._to_login(scope, send)
            return
        scope.setdefault("state", {})["dashboard_session"] = session
        await self.app(scope, receive, send)

    async def _key_still_valid(self, session: Session) -> bool:
        """A session ends when its key is revoked or loses the admin scope (checked every few
        seconds, not on every request)."""
        if session.key.key_id == BOOTSTRAP_KEY_ID:
            return True
        now = time.monotonic()
        if now - session.key_checked_at < KEY_RECHECK_SECONDS:
            return True
        keys = await anyio.to_thread.run_sync(self.keys.list, session.key.tenant)
        current = next((k for k in keys if k.key_id == session.key.key_id), None)
        valid = (
            current is not None and current.revoked_at is None and current.allows(KeyScope.ADMIN)
        )
        session.key_checked_at = now
        return valid

    @staticmethod
    async def _to_login(scope: Scope, send: Send) -> None:
        path = scope.get("path", "")
        query = scope.get("query_string", b"").decode("latin-1")
        target = path + (f"?{query}" if query else "")
        location = f"{PREFIX}/login?next={quote(target, safe='')}"
        if header(scope, b"hx-request"):
            status, headers = 401, [(b"hx-redirect", location.encode())]
        else:
            status, headers = 303, [(b"location", location.encode())]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", b"0"), (b"cache-control", b"no-store")],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    def _with_headers(send: Send, *, static: bool) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if not static and b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers + extra}
            await send(message)

        return wrapped
