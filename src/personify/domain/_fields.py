"""Annotated field types shared by the domain records (ids, names, texts, properties)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints

from personify.domain import limits

Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_ID_LENGTH)
]
"""An id given by the client: 1..128 characters, any Unicode, surrounding blanks stripped."""

Name = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=limits.MAX_NAME_LENGTH,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$",
    ),
]
"""A machine name: letters, digits, ``_ . : -``."""

ShortText = Annotated[str, StringConstraints(max_length=limits.MAX_SHORT_TEXT)]
LongText = Annotated[str, StringConstraints(max_length=limits.MAX_LONG_TEXT)]
Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_SHORT_TEXT)
]
"""A category, tag, skill, interest: free text, one line."""

Price = Annotated[float, Field(ge=0, le=limits.MAX_AMOUNT, allow_inf_nan=False)]
"""A price: finite, 0..1e9 (a negative or astronomically large price is an error, not data)."""
SignedAmount = Annotated[
    float, Field(ge=-limits.MAX_AMOUNT, le=limits.MAX_AMOUNT, allow_inf_nan=False)
]
"""An event's value (revenue, rating, seconds; negative for a refund): finite, |v| <= 1e9."""
Quantity = Annotated[float, Field(ge=0, le=limits.MAX_QUANTITY, allow_inf_nan=False)]
"""Units bought / returned: finite, 0..1e6 (a return is its own event type, not a negative)."""

PropertyValue = str | int | float | bool | None | list[str | int | float | bool]


def _finite(item: Any) -> bool:
    if isinstance(item, float):
        return math.isfinite(item)
    if isinstance(item, list):
        return all(math.isfinite(v) for v in item if isinstance(v, float))
    return True


def _check_properties(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > limits.MAX_PROPERTIES:
        raise ValueError(
            f"at most {limits.MAX_PROPERTIES} properties are accepted, got {len(value)}"
        )
    for key, item in value.items():
        if not _finite(item):
            raise ValueError(f"property {key!r} is not a finite number (NaN / Infinity)")
        if not key or len(key) > limits.MAX_NAME_LENGTH:
            raise ValueError(
                f"property name {key!r} must have 1..{limits.MAX_NAME_LENGTH} characters"
            )
        if isinstance(item, str) and len(item) > limits.MAX_SHORT_TEXT:
            raise ValueError(f"property {key!r} is longer than {limits.MAX_SHORT_TEXT} characters")
        if isinstance(item, list) and len(item) > limits.MAX_LIST_LENGTH:
            raise ValueError(f"property {key!r} has more than {limits.MAX_LIST_LENGTH} values")
    return value


Properties = Annotated[dict[str, PropertyValue], AfterValidator(_check_properties)]
"""Free typed properties: at most 64 names, scalar values or short lists of scalars."""

LabelList = Annotated[list[Label], Field(max_length=limits.MAX_LIST_LENGTH)]
