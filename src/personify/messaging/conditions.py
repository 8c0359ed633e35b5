"""Conditions over a person and an event: ``{field: profile.country, op: in, value: [DE]}``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)

from personify.domain.events import Event
from personify.domain.users import User

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


_ISO = TypeAdapter(timedelta)


def _seconds(value: float) -> timedelta:
    try:
        return timedelta(seconds=value)
    except (OverflowError, ValueError):  # beyond timedelta's range (or NaN): not a duration
        raise ValueError(
            f"a duration of {value!r} seconds is out of range (at most 999999999 days)"
        ) from None


def parse_duration(value: Any) -> Any:
    """``"90s"``, ``"30m"``, ``"4h"``, ``"7d"``, ``"2w"``, ISO 8601 (``"P1D"``, ``"PT4H30M"``,
    what the OpenAPI schema's ``format: duration`` names) or seconds -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _seconds(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return _seconds(float(match.group(1)) * _UNITS[match.group(2)])
        if value.strip().upper().startswith(("P", "-P")):
            try:
                return _ISO.validate_python(value.strip().upper())
            except ValidationError:
                pass
    raise ValueError(
        f"invalid duration {value!r}; use e.g. '30m', '4h', '7d', ISO 8601 'P1D' / 'PT4H' or "
        "seconds"
    )


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema({
        "anyOf": [
            {"type": "string", "format": "duration", "description": "ISO 8601, e.g. P1D"},
            {"type": "string", "pattern": r"^\d+(\.\d+)?(s|m|h|d|w)$",
             "description": "e.g. 30m, 4h, 7d"},
            {"type": "number", "description": "seconds"},
        ]
    }),
]

Operator = Literal[
    "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "missing", "contains"
]


class Condition(BaseModel):
    """One test on a field path of the record built by :func:`record_of`."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.]+$")
    op: Operator = "eq"
    value: Any = None

    def holds(self, record: dict[str, Any]) -> bool:
        actual = lookup(record, self.field)
        op, expected = self.op, self.value
        if op == "exists":
            return actual is not None
        if op == "missing":
            return actual is None
        if op == "eq":
            return bool(actual == expected)
        if op == "ne":
            return bool(actual != expected)
        if op in ("in", "not_in"):
            inside = isinstance(expected, list) and actual in expected
            return inside if op == "in" else not inside
        if op == "contains":
            return isinstance(actual, (list, str)) and expected in actual
        if actual is None or expected is None:
            return False
        try:
            return bool(
                {
                    "gt": actual > expected,
                    "gte": actual >= expected,
                    "lt": actual < expected,
                    "lte": actual <= expected,
                }[op]
            )
        except TypeError:
            return False


def lookup(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def record_of(user: User | None, event: Event | None = None) -> dict[str, Any]:
    """The record conditions read: ``user_id``, ``profile.*``, ``properties.*``, ``event.*``."""
    record: dict[str, Any] = {}
    if user is not None:
        record["user_id"] = user.user_id
        record["profile"] = user.profile.model_dump()
        record["properties"] = dict(user.properties)
    if event is not None:
        record["event"] = event.model_dump(mode="json")
    return record


def all_hold(conditions: list[Condition], record: dict[str, Any]) -> bool:
    return all(c.holds(record) for c in conditions)
