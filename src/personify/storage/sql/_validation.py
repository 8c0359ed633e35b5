"""Turns pydantic validation errors into domain errors that name the offending field."""

from __future__ import annotations

from pydantic import ValidationError

from personify.domain.errors import InvalidInput


def invalid_input(exc: ValidationError, *, prefix: str = "") -> InvalidInput:
    """The first problem of ``exc`` as :class:`InvalidInput` with a dotted field path."""
    first = exc.errors()[0]
    path = ".".join(str(part) for part in first["loc"])
    field = f"{prefix}.{path}" if prefix and path else (prefix or path)
    return InvalidInput(
        f"{field}: {first['msg']}",
        field=field or None,
        details={
            "errors": [
                {"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()
            ]
        },
    )
