"""OpenAPI documentation for bodies the API parses itself (batches parsed record by record, so
that one bad record does not fail the request)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

_REF = "#/components/schemas/{model}"
_EXTRA_MODELS: dict[str, type[BaseModel]] = {}
_OPTIONAL_IN_BODY: dict[str, tuple[str, ...]] = {}


def documented_body(
    model: type[BaseModel], *, many: bool, key: str | None = None,
    from_path: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON body of ``model`` (or an array of them, optionally also
    accepted wrapped as ``{key: [...]}``). Fields in ``from_path`` may be left out of the body
    (the URL gives them): the body is then documented as ``<Model>Body`` without them required."""
    name = model.__name__
    if from_path:
        name = f"{name}Body"
        _OPTIONAL_IN_BODY[name] = from_path
    _EXTRA_MODELS[name] = model
    ref = {"$ref": _REF.format(model=name)}
    schema: dict[str, Any] = ref
    if many:
        array = {"type": "array", "items": ref}
        schema = array if key is None else {
            "oneOf": [array, {"type": "object", "properties": {key: array}, "required": [key]}]
        }
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
                "accepted": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
"""Every error answer: ``{"error": {code, message, field?, accepted?, details?}}``."""

ERROR_STATUSES = {
    "400": "malformed JSON or a bad request",
    "401": "no API key, or an unknown or revoked one",
    "403": "the key lacks the scope, or may not change this person (docs/security.md)",
    "404": "no such record in your tenant",
    "405": "method not allowed",
    "409": "conflicts with the stored state",
    "410": "the person was erased",
    "413": "request body or batch over the limit",
    "415": "unsupported media type",
    "422": "a value breaks the schema or a documented limit",
    "429": "over the rate limit (see Retry-After)",
    "503": "a needed service is not running (messaging, a model)",
}


def declare_errors(schema: dict[str, Any]) -> None:
    """Declare the error answers every operation may give, with Personify's error shape (it
    replaces FastAPI's default 422 schema, which Personify never sends)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    content = {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status, description in ERROR_STATUSES.items():
                declared = responses.get(status)
                if declared is None or status == "422":
                    responses[status] = {"description": description, "content": content}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` include the models referenced by :func:`documented_body`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        declare_errors(schema)
        for name, model in _EXTRA_MODELS.items():
            body = model.model_json_schema(ref_template=_REF)
            for sub_name, sub_schema in body.pop("$defs", {}).items():
                components.setdefault(sub_name, sub_schema)
            optional = _OPTIONAL_IN_BODY.get(name, ())
            if optional:
                body["required"] = [f for f in body.get("required", []) if f not in optional]
            components.setdefault(name, body)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
