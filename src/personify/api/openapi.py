"""OpenAPI documentation for bodies the API parses itself (batches parsed record by record, so
that one bad record does not fail the request)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

_REF = "#/components/schemas/{model}"
_EXTRA_MODELS: dict[str, type[BaseModel]] = {}


def documented_body(
    model: type[BaseModel], *, many: bool, key: str | None = None
) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON body of ``model`` (or an array of them, optionally also
    accepted wrapped as ``{key: [...]}``)."""
    _EXTRA_MODELS[model.__name__] = model
    ref = {"$ref": _REF.format(model=model.__name__)}
    schema: dict[str, Any] = ref
    if many:
        array = {"type": "array", "items": ref}
        schema = array if key is None else {
            "oneOf": [array, {"type": "object", "properties": {key: array}, "required": [key]}]
        }
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` include the models referenced by :func:`documented_body`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, model in _EXTRA_MODELS.items():
            body = model.model_json_schema(ref_template=_REF)
            for sub_name, sub_schema in body.pop("$defs", {}).items():
                components.setdefault(sub_name, sub_schema)
            components.setdefault(name, body)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
