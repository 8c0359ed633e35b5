"""The route class of every API router: the key is checked before the body is read, and JSON
bodies are parsed by one strict parser (orjson: no NaN / Infinity, like the event routes) and
checked for their JSON types: a body model's fields take the JSON type the schema names (``0`` is
not a boolean or a date-time, ``"1"`` not an integer, ``true`` not a number), answered 422 naming
the field and the accepted type, before FastAPI's validation (whose lax mode would coerce them).

Every ``APIRouter`` of the API is made with ``route_class=KeyFirstRoute`` (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, cast

import orjson
from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError

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


JSON_TYPE_ERRORS = frozenset({
    "bool_type", "int_type", "float_type", "string_type", "datetime_type", "date_type",
})
"""Strict JSON-mode errors that mean "a value of another JSON type" (what lax mode coerces)."""


def check_json_types(adapter: TypeAdapter[Any], raw: bytes) -> None:
    """Raise :class:`RequestValidationError` (a 422 naming the field) when a value of ``raw``
    has another JSON type than the body model's field (strict JSON mode: date-times and enums
    still come as strings). Malformed JSON and other errors are left to FastAPI's validation."""
    try:
        adapter.validate_json(raw, strict=True)
    except ValidationError as exc:
        wrong = [
            {**err, "loc": ("body", *err["loc"])}
            for err in exc.errors(include_url=False)
            if err["type"] in JSON_TYPE_ERRORS
        ]
        if not wrong:
            return
        # with every other problem lax validation finds, so the answer lists them all
        named: set[tuple[Any, ...]] = {tuple(cast(tuple[Any, ...], err["loc"])) for err in wrong}
        try:
            adapter.validate_python(orjson.loads(raw))
        except ValidationError as lax:
            wrong += [
                {**err, "loc": ("body", *err["loc"])}
                for err in lax.errors(include_url=False)
                if ("body", *err["loc"]) not in named
            ]
        raise RequestValidationError(wrong) from None


class KeyFirstRoute(APIRoute):
    """Authenticates the presented key (401) before FastAPI reads and parses the body, and
    parses JSON bodies strictly."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        keyed = _key_dependency(self.dependant)
        body_field = self.body_field
        adapter: TypeAdapter[Any] | None = (
            getattr(body_field, "_type_adapter", None) if body_field is not None else None
        )

        async def key_first(request: Request) -> Response:
            if keyed is not None:
                auth: Authenticator = request.app.state.runtime.authenticator
                auth.authenticate(secret_from_headers(
                    request.headers.get("authorization"), request.headers.get("x-api-key"),
                    allow_basic=keyed == "segment",
                ) or (request.query_params.get("api_key") if keyed == "beacon" else None))
            strict = StrictJsonRequest(request.scope, request.receive)
            kind = request.headers.get("content-type", "")
            if adapter is not None and (not kind or "json" in kind):
                raw = await strict.body()
                if raw:
                    check_json_types(adapter, raw)
            return await handler(strict)

        return key_first
