"""Reading the records of a bulk or batch request: a JSON array, or an object holding one under
a named key, with the documented maximum count."""

from __future__ import annotations

from typing import Any

from personify.domain.errors import InvalidInput, LimitExceeded

MAX_RECORD_BYTES = 256 * 1024
"""One user or item record in a bulk call (a 20,000-character bio fits)."""


def records_of(body: Any, *, key: str, limit: int) -> list[Any]:
    """The list of raw records in ``body`` (``[...]`` or ``{key: [...]}``)."""
    records = body.get(key) if isinstance(body, dict) else body
    if not isinstance(records, list):
        raise InvalidInput(
            f"the body must be a JSON array of records or an object with a {key!r} array",
            field=key,
            accepted=f"[{{...}}, ...] or {{\"{key}\": [{{...}}, ...]}}",
        )
    if len(records) > limit:
        raise LimitExceeded(
            f"{len(records)} records in one request",
            field=key,
            accepted=f"at most {limit} records per request",
        )
    return records
