"""One place that maps Personify's domain errors (and framework errors) to HTTP responses.

Every error body has the same shape: ``{"error": {"code", "message", "field", "accepted"}}``,
where ``field`` is the offending field path and ``accepted`` says what would be accepted.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from personify.api.responses import JSONBody
from personify.domain.errors import (
    ConfigurationError,
    Conflict,
    Erased,
    Forbidden,
    InvalidInput,
    LimitExceeded,
    NotFitted,
    NotFound,
    PersonifyError,
    RateLimited,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger(__name__)


class MalformedJson(InvalidInput):
    """The request body is not valid JSON (or not valid UTF-8, or badly gzip-encoded)."""

    code = "malformed_json"


STATUS_BY_ERROR: tuple[tuple[type[PersonifyError], int], ...] = (
    (MalformedJson, 400),
    (LimitExceeded, 413),
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (Unauthorized, 401),
    (Forbidden, 403),
    (RateLimited, 429),
    (Erased, 410),
    (Unavailable, 503),
    (NotFitted, 503),
    (ConfigurationError, 500),
)
"""Most specific class first; anything else is a 500."""

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "limit_exceeded",
    415: "unsupported_media_type",
    429: "rate_limited",
}

_ACCEPTED_BY_TYPE = {
    "missing": "a value (the field is required)",
    "extra_forbidden": "only the documented fields",
    "string_type": "a string",
    "string_too_long": "a shorter string",
    "string_too_short": "a non-empty string",
    "int_parsing": "an integer",
    "int_type": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "an object",
    "model_attributes_type": "an object",
    "datetime_type": "an ISO 8601 date-time string such as 2026-11-27T10:00:00Z",
    "date_type": "an ISO 8601 date string such as 2026-11-27",
    "datetime_parsing": "an ISO 8601 date-time such as 2026-11-27T10:00:00Z",
    "datetime_from_date_parsing": "an ISO 8601 date-time such as 2026-11-27T10:00:00Z",
    "enum": "one of the documented values",
    "greater_than_equal": "a larger number",
    "less_than_equal": "a smaller number",
    "string_pattern_mismatch": "letters, digits and _ . : - (starting with a letter, digit or _)",
    "control_characters": "text without control characters (NUL, escape, DEL; tab and, in long "
    "texts, line breaks are fine)",
    "invisible_id": "an id with at least one visible character",
}
_LOCATIONS = {"body", "query", "path", "header", "cookie"}


def status_for(exc: PersonifyError) -> int:
    """The HTTP status code of a domain error."""
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(
    code: str,
    message: str,
    *,
    field: str | None = None,
    accepted: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of every error response."""
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    if accepted is not None:
        error["accepted"] = accepted
    if details:
        error["details"] = details
    return {"error": error}


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "profile", "email")`` -> ``"profile.email"``; list indexes become ``[i]``."""
    parts = list(loc)
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path


def _personify_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PersonifyError)
    status = status_for(exc)
    if status >= 500:
        log.error("request failed: %s", exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, RateLimited):  # whole seconds, at least 1 (RFC 9110 delay-seconds)
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    return JSONBody(error_body(**exc.to_dict()), status_code=status, headers=headers)


def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(err.get("type") == "json_invalid" for err in errors):
        first = next(err for err in errors if err.get("type") == "json_invalid")
        reason = (first.get("ctx") or {}).get("error", "invalid JSON")
        return JSONBody(
            error_body("malformed_json", f"the request body is not valid JSON: {reason}",
                       field="body", accepted="a JSON document"),
            status_code=400,
        )
    first = errors[0] if errors else {}
    kind = str(first.get("type", ""))
    ctx = first.get("ctx") or {}
    accepted = _ACCEPTED_BY_TYPE.get(kind)
    if "max_length" in ctx:
        accepted = f"at most {ctx['max_length']} characters or values"
    elif "expected" in ctx:
        accepted = str(ctx["expected"])
    listed = [
        {"field": field_path(err.get("loc", ())), "message": str(err.get("msg", ""))}
        for err in errors[:20]
    ]
    return JSONBody(
        error_body(
            "invalid_input",
            str(first.get("msg", "invalid input")),
            # a whole-body error (a missing body, a model rule) names its location: "body"
            field=field_path(first.get("loc", ())) or _location(first.get("loc", ())),
            accepted=accepted,
            details={"errors": listed} if len(errors) > 1 else None,
        ),
        status_code=422,
    )


def _location(loc: tuple[Any, ...] | list[Any]) -> str | None:
    return str(loc[0]) if loc else None


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, PersonifyError):  # e.g. the body limit hit while FastAPI read
        return _personify_error(request, exc.__cause__)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = exc.headers
    field, accepted = _HTTP_FIELDS.get(exc.status_code, (None, None))
    if exc.status_code == 405:  # Starlette names only the first route that matched the path
        allowed = ", ".join(_methods_of_path(request))
        headers = {**(headers or {}), "Allow": allowed}
        accepted = allowed
    return JSONBody(
        error_body(code, str(exc.detail), field=field, accepted=accepted),
        status_code=exc.status_code, headers=headers,
    )


_HTTP_FIELDS = {
    404: ("path", "a route listed in /openapi.json"),
    405: ("method", None),
    406: ("Accept", "application/json"),
    415: ("Content-Type", "application/json"),
}
"""The field a framework error is about (every 4xx names one)."""


def _methods_of_path(request: Request) -> list[str]:
    """Every method some route of the app answers for the request's path (the 405's Allow)."""
    return [
        method for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
               for route in request.app.router.routes)
    ]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _unexpected_error(_request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return JSONBody(
        error_body("internal_error", "the server failed to handle this request"), status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the same JSON shape."""
    app.add_exception_handler(PersonifyError, _personify_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
