"""Annotated field types shared by the domain records (ids, names, texts, properties)."""

from __future__ import annotations

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

PropertyValue = str | int | float | bool | None | list[str | int | float | bool]


def _check_properties(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > limits.MAX_PROPERTIES:
        raise ValueError(
            f"at most {limits.MAX_PROPERTIES} properties are accepted, got {len(value)}"
        )
    for key, item in value.items():
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
