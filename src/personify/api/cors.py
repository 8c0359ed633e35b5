"""CORS for the web snippet: pages of a tenant's configured origins (settings
``allowed_origins``) may call the API; any other origin gets no CORS headers and a clear error.

A preflight carries no API key, so it cannot name a tenant: it is answered for an origin that
some tenant allows (or the API's own origin), and refused otherwise (403, ``field: Origin``). The
request itself then carries the key, and a browser key is refused outside its own tenant's
origins (``personify.api.deps.visitor_of``). Only ``/v1/`` and ``/sdk/`` paths take part.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_HEADERS = (
    "authorization, content-type, x-api-key, x-person-token, x-personify-anonymous-id, "
    "x-personify-user-id"
)
MAX_AGE_S = "600"


class BrowserCors:
    """ASGI middleware: the CORS answers of :mod:`personify.api.cors`."""

    def __init__(self, app: ASGIApp, *, allowed_origins: Mapping[str, list[str]]) -> None:
        self.app = app
        self.origins = frozenset(o for origins in allowed_origins.values() for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(("/v1/", "/sdk/")):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower()
        allowed = origin.lower() in self.origins or origin.lower() == own
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(send, origin, allowed)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"access-control-expose-headers", b"retry-after"),
                    (b"vary", b"Origin"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, send: Send, origin: str, allowed: bool) -> None:
        if allowed:
            status = 204
            body = b""
            extra = [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-methods", b"GET, POST"),
                (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                (b"access-control-max-age", MAX_AGE_S.encode()),
                (b"vary", b"Origin"),
            ]
        else:
            status = 403
            body = orjson.dumps({"error": {
                "code": "forbidden",
                "message": f"origin {origin!r} is not allowed to call this API from a browser",
                "field": "Origin",
                "accepted": "a page served from an origin in the settings' allowed_origins "
                "(docs/web.md)",
            }})
            extra = [(b"content-type", b"application/json"), (b"vary", b"Origin")]
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", str(len(body)).encode()), *extra]})
        await send({"type": "http.response.body", "body": body})
