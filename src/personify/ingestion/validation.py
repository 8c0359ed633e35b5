"""Per-record validation: a bad record is reported with its index, field and reason, and never
loses the good records beside it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from personify.domain import limits

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Rejection:
    """One rejected record: where it was in the batch, which field, why, and what is accepted."""

    index: int
    code: str
    field: str | None
    message: str
    accepted: str | None = None
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class BatchResult:
    """The outcome of one batch: ids stored now, ids already stored (acknowledged, not stored
    twice), and rejections."""

    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    timestamps_defaulted: list[int] = field(default_factory=list)
    """Indexes of events that had no timestamp and got the server's receive time."""
    warnings: list[dict[str, Any]] = field(default_factory=list)
    """Stored events that will not do what they seem meant for (index, field, message)."""

    @property
    def accepted(self) -> int:
        return len(self.stored) + len(self.duplicates)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "stored": len(self.stored),
            "duplicates": len(self.duplicates),
            "rejected": [r.to_dict() for r in self.rejected],
            **({"timestamps_defaulted": self.timestamps_defaulted}
               if self.timestamps_defaulted else {}),
            **({"warnings": self.warnings} if self.warnings else {}),
        }


_ACCEPTED_BY_TYPE = {
    "string_too_long": "a shorter string",
    "string_too_short": "a non-empty string",
    "missing": "a value (the field is required)",
    "extra_forbidden": "only the documented fields",
    "datetime_parsing": "an ISO 8601 date-time such as 2026-11-27T10:00:00Z",
    "datetime_from_date_parsing": "an ISO 8601 date-time such as 2026-11-27T10:00:00Z",
    "datetime_type": "an ISO 8601 date-time such as 2026-11-27T10:00:00Z",
    "float_parsing": "a number",
    "float_type": "a number",
    "int_parsing": "an integer",
    "int_type": "an integer",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "string_pattern_mismatch": "letters, digits and _ . : - (starting with a letter, digit or _)",
    "control_characters": "text without control characters (NUL, escape, DEL; tab and, in long "
    "texts, line breaks are fine)",
    "invisible_id": "an id with at least one visible character",
    "too_long": "fewer values",
    "greater_than_equal": "a larger number",
    "less_than_equal": "a smaller number",
    "missing_subject": "user_id or anonymous_id (a non-empty string)",
}
_FIELD_BY_TYPE = {"missing_subject": "user_id"}


def rejection_from_validation_error(
    index: int, exc: ValidationError, record_id: str | None = None
) -> Rejection:
    """The first problem of a pydantic error as a Rejection naming the field path."""
    first = exc.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in first.get("loc", ()) if part != "__root__")
    loc = loc or _FIELD_BY_TYPE.get(str(first.get("type")), "")
    message = str(first.get("msg", "invalid value"))
    ctx = first.get("ctx") or {}
    accepted = _ACCEPTED_BY_TYPE.get(str(first.get("type")))
    if "max_length" in ctx:
        accepted = f"at most {ctx['max_length']} characters or values"
    if "pattern" in ctx:
        accepted = f"a value matching {ctx['pattern']}"
    return Rejection(index, "invalid_input", loc or None, message, accepted, record_id)


def _record_id(raw: Any, id_field: str) -> str | None:
    if isinstance(raw, Mapping):
        value = raw.get(id_field)
        if isinstance(value, str):
            return value
    return None


def validate_each(
    model: type[M],
    raws: Iterable[Any],
    *,
    id_field: str,
    start_index: int = 0,
    max_bytes: int | None = limits.MAX_EVENT_BYTES,
) -> tuple[list[tuple[int, M]], list[Rejection]]:
    """Validate each raw mapping into ``model``; returns (index, record) pairs and rejections."""
    valid: list[tuple[int, M]] = []
    rejected: list[Rejection] = []
    for offset, raw in enumerate(raws):
        index = start_index + offset
        if isinstance(raw, model):
            valid.append((index, raw))
            continue
        record_id = _record_id(raw, id_field)
        if not isinstance(raw, Mapping):
            rejected.append(
                Rejection(
                    index,
                    "invalid_input",
                    None,
                    "each record must be a JSON object",
                    "an object with the documented fields",
                    record_id,
                )
            )
            continue
        if max_bytes is not None:
            try:
                size = len(orjson.dumps(raw, default=str))
            except TypeError:  # orjson stops at 254 levels of nesting
                rejected.append(_too_deep(index, record_id))
                continue
            if size > max_bytes:
                rejected.append(
                    Rejection(
                        index,
                        "limit_exceeded",
                        None,
                        f"record is {size} bytes",
                        f"at most {max_bytes} bytes per record",
                        record_id,
                    )
                )
                continue
        try:
            valid.append((index, model.model_validate(raw)))
        except ValidationError as exc:
            rejected.append(rejection_from_validation_error(index, exc, record_id))
        except RecursionError:
            rejected.append(_too_deep(index, record_id))
    return valid, rejected


def _too_deep(index: int, record_id: str | None) -> Rejection:
    return Rejection(
        index, "invalid_input", None, "the record is nested too deeply",
        "properties whose values are scalars or lists of scalars", record_id,
    )
