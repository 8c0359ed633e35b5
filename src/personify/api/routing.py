"""The route class of every API router: the key is checked before the body is read, and JSON
bodies are parsed by one strict parser (orjson: no NaN / Infinity, like the event routes).

Every ``APIRouter`` of the API is made with ``route_class=KeyFirstRoute`` (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from personify.runtime.auth import Authenticator, secret_from_headers


class StrictJsonRequest(Request):
    """A request whose ``json()`` is orjson's: NaN, Infinity and invalid UTF-8 are malformed
    JSON (``orjson.JSONDecodeError`` is a ``json.JSONDecodeError``, so FastAPI answers 400)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


def _key_dependency(dependant: Dependant) -> str | None:
    """``"api"`` / ``"segment"`` when the route authenticates a key (somewhere among its
    dependencies), else None."""
    from personify.api.deps import authenticated_key, beacon_key, segment_key

    stack = [dependant]
    while stack:
        current = stack.pop()
        if current.call is segment_key:
            return "segment"
        if current.call is beacon_key:
            return "beacon"
        if current.call is authenticated_key:
            return "api"
        stack.extend(current.dependencies)
    return None


class KeyFirstRoute(APIRoute):
    """Authenticates the presented key (401) before FastAPI reads and parses the body, and
    parses JSON bodies strictly."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        keyed = _key_dependency(self.dependant)

        async def key_first(request: Request) -> Response:
            if keyed is not None:
                auth: Authenticator = request.app.state.runtime.authenticator
                auth.authenticate(secret_from_headers(
                    request.headers.get("authorization"), request.headers.get("x-api-key"),
                    allow_basic=keyed == "segment",
                ) or (request.query_params.get("api_key") if keyed == "beacon" else None))
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return key_first
