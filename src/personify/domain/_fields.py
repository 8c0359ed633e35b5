"""Annotated field types shared by the domain records (ids, names, texts, properties)."""

from __future__ import annotations

import math
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from personify.domain import limits

_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me", "Co", "Cn", "Cs"})
_BLANK_LOOKING = frozenset(" \u2800\u3164\u115f\u1160\uffa0")
"""Printable characters that show nothing (Braille blank, Hangul fillers)."""


def control_characters(value: str, *, allowed: str = "") -> bool:
    """Whether ``value`` holds a control character (NUL, ESC, DEL, C1 ...) not in ``allowed``.
    PostgreSQL cannot store NUL; no store gets any, so every database answers the same."""
    if value.isprintable():
        return False
    return any(unicodedata.category(c) == "Cc" and c not in allowed for c in value)


def check_identifier(value: str) -> str:
    """Refuse ids with control characters or made only of invisible characters."""
    if value.isprintable():
        if _BLANK_LOOKING.issuperset(value):
            raise PydanticCustomError("invisible_id", "the id is made only of invisible characters")
        return value
    if control_characters(value):
        raise PydanticCustomError(
            "control_characters", "the id contains control characters (NUL, escape, ...)"
        )
    if all(c in _BLANK_LOOKING or unicodedata.category(c) in _INVISIBLE_CATEGORIES
           for c in value):
        raise PydanticCustomError("invisible_id", "the id is made only of invisible characters")
    return value


def check_line(value: str) -> str:
    """Refuse one-line texts with control characters (a tab is fine)."""
    if control_characters(value, allowed="\t"):
        raise PydanticCustomError(
            "control_characters", "the text contains control characters (NUL, escape, ...)"
        )
    return value


def check_text(value: str) -> str:
    """Refuse long texts with control characters other than tab and line breaks."""
    if control_characters(value, allowed="\t\n\r"):
        raise PydanticCustomError(
            "control_characters", "the text contains control characters (NUL, escape, ...)"
        )
    return value


Identifier = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_ID_LENGTH),
    AfterValidator(check_identifier),
]
"""An id given by the client: 1..128 characters, any Unicode, surrounding blanks stripped; no
control characters, not only invisible ones."""

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

ShortText = Annotated[
    str, StringConstraints(max_length=limits.MAX_SHORT_TEXT), AfterValidator(check_line)
]
LongText = Annotated[
    str, StringConstraints(max_length=limits.MAX_LONG_TEXT), AfterValidator(check_text)
]
EventText = Annotated[
    str, StringConstraints(max_length=limits.MAX_EVENT_TEXT), AfterValidator(check_text)
]
"""What a person wrote (review, comment, message): up to 8,000 characters, line breaks allowed,
no control characters."""
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_SHORT_TEXT),
    AfterValidator(check_line),
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


def _clean(item: Any) -> bool:
    if isinstance(item, str):
        return not control_characters(item, allowed="\t\n\r")
    if isinstance(item, list):
        return not any(control_characters(v, allowed="\t\n\r")
                       for v in item if isinstance(v, str))
    return True


def _check_properties(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > limits.MAX_PROPERTIES:
        raise ValueError(
            f"at most {limits.MAX_PROPERTIES} properties are accepted, got {len(value)}"
        )
    for key, item in value.items():
        if not _finite(item):
            raise ValueError(f"property {key!r} is not a finite number (NaN / Infinity)")
        if control_characters(key) or not _clean(item):
            raise ValueError(f"property {key!r} contains control characters (NUL, escape, ...)")
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
