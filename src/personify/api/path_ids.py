"""Ids containing ``/`` in ``/v1`` URL paths, written percent-encoded: ``/v1/users/a%2Fb``.

User, item and other ids are free text, so they may contain ``/``. The ASGI server decodes the
path before routing (``%2F`` becomes ``/``), which would turn ``a%2Fb`` into two path segments
and miss the route. So, for paths under ``/v1/``:

* :class:`EncodedSlashes` (middleware) rebuilds ``scope["path"]`` from the undecoded
  ``raw_path`` with two characters left escaped inside each segment: ``/`` as ``%2F`` and ``%``
  as ``%25`` (everything else decoded as usual). Routing then sees ``a%2Fb`` as one segment. It
  only has work to do when the raw path holds a ``%``;
* :func:`unescape_path_params` (an application-wide dependency, so it runs before any other
  dependency or the endpoint reads a path parameter) undoes those two escapes in the matched
  path parameters of such a request.

A literal ``/`` still separates segments, so ``/v1/users/a%2Fb/export`` is the export of user
``a/b`` and ``/v1/users/a/b`` is no route: no route order or suffix name can make an id
ambiguous, and no route had to change. Without ``raw_path`` in the ASGI scope (every common
server sets it) the request is routed as before.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from fastapi import Depends
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX = "/v1/"
"""Only API paths are rewritten (the dashboard and tracking links keep Starlette's routing)."""

ESCAPED = "personify.escaped_path"
"""Scope key set by :class:`EncodedSlashes` when it rewrote the path."""

_ENCODED_SLASH = re.compile(rb"%2[fF]")
_ESCAPES = re.compile(r"%(2F|25)")
_UNESCAPED = {"2F": "/", "25": "%"}


def escaped_path(raw_path: bytes) -> str:
    """``raw_path`` decoded like the server decodes it, except ``/`` and ``%`` that were encoded
    inside a segment, which stay ``%2F`` / ``%25``."""
    segments = []
    for raw_segment in raw_path.split(b"/"):
        pieces = _ENCODED_SLASH.split(raw_segment)
        segments.append("%2F".join(
            unquote(piece.decode("latin-1")).replace("%", "%25") for piece in pieces
        ))
    return "/".join(segments)


class EncodedSlashes:
    """Pure ASGI middleware: ``/v1`` paths keep encoded ``/`` (and ``%``) inside segments."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path")
            path: str = scope["path"]
            if raw and b"%" in raw and path.startswith(PREFIX):
                escaped = escaped_path(raw)
                # (not compared with ``path``: Starlette's TestClient decodes that twice)
                if escaped != path and escaped.startswith(PREFIX):
                    scope = {**scope, "path": escaped, ESCAPED: True}
        await self.app(scope, receive, send)


def unescape(value: str) -> str:
    """A path segment left escaped by :class:`EncodedSlashes` as the id it stands for."""
    if "%" not in value:
        return value
    return _ESCAPES.sub(lambda match: _UNESCAPED[match.group(1)], value)


async def unescape_path_params(request: Request) -> None:
    """Application dependency: the path parameters of a request whose path kept escapes."""
    scope = request.scope
    if scope.get(ESCAPED):
        scope[ESCAPED] = False  # once per request
        params: dict[str, Any] = scope.get("path_params", {})
        for name, value in params.items():
            if isinstance(value, str):
                params[name] = unescape(value)


UnescapedPathIds = Depends(unescape_path_params)
"""Give it to ``FastAPI(dependencies=[...])``; add :class:`EncodedSlashes` as a middleware."""
