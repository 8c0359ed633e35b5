"""Column mappings for bulk import: which source column fills which record field, and how a
string from a CSV cell becomes the value that field expects.

Target fields are dotted paths into the domain record (``profile.country``, ``context.device``,
``properties.size``). The accepted paths are derived from the domain models, so a new field on
``User`` / ``Item`` / ``Event`` is importable without touching this module.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal, get_args, get_origin

import orjson
from pydantic import BaseModel

from personify.domain.errors import InvalidInput
from personify.domain.events import Event
from personify.domain.items import Item
from personify.domain.users import User

Kind = Literal["users", "items", "events"]
KINDS: tuple[Kind, ...] = ("users", "items", "events")
MODELS: dict[str, type[BaseModel]] = {"users": User, "items": Item, "events": Event}
ID_FIELDS: dict[str, str] = {"users": "user_id", "items": "item_id", "events": "event_id"}


class FieldType(Enum):
    """How a source value is coerced before the domain model validates it."""

    STR = "str"
    INTEGER = "integer"
    NUMBER = "number"
    BOOL = "bool"
    DATETIME = "datetime"
    LIST = "list"
    OBJECT = "object"
    """A nested record or a free-properties mapping: a dict, or a JSON object in a string."""
    ANY = "any"
    """One free property: CSV strings that look like numbers or booleans become them."""


def _unwrap(annotation: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` -> ``X``."""
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _field_type(annotation: Any) -> FieldType:
    base = _unwrap(annotation)
    origin = get_origin(base)
    if origin in (list, frozenset, set, tuple):
        return FieldType.LIST
    if origin is dict or base is dict:
        return FieldType.OBJECT
    if base is bool:
        return FieldType.BOOL
    if base is int:
        return FieldType.INTEGER
    if base is float:
        return FieldType.NUMBER
    if base is datetime:
        return FieldType.DATETIME
    return FieldType.STR


def field_types(model: type[BaseModel], prefix: str = "") -> dict[str, FieldType]:
    """Every importable dotted path of ``model`` and its type; free mappings end in ``.*``."""
    out: dict[str, FieldType] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        base = _unwrap(info.annotation)
        if isinstance(base, type) and issubclass(base, BaseModel):
            out[path] = FieldType.OBJECT
            out.update(field_types(base, f"{path}."))
            continue
        kind = _field_type(info.annotation)
        out[path] = kind
        if kind is FieldType.OBJECT:
            out[f"{path}.*"] = FieldType.ANY
    return out


FIELD_TYPES: dict[str, dict[str, FieldType]] = {k: field_types(m) for k, m in MODELS.items()}


def target_type(kind: str, target: str) -> FieldType | None:
    """The type of ``target`` in records of ``kind``, or None if it is not a field."""
    table = FIELD_TYPES[kind]
    if target in table:
        return table[target]
    head, _, _ = target.rpartition(".")
    while head:
        if f"{head}.*" in table:
            return FieldType.ANY
        head, _, _ = head.rpartition(".")
    return None


def accepted_targets(kind: str) -> str:
    """A short description of the accepted target paths, for error messages."""
    names = sorted(p.replace(".*", ".<name>") for p in FIELD_TYPES[kind])
    return ", ".join(names)


class CoercionError(ValueError):
    """A source value cannot become what its target field expects."""

    def __init__(self, target: str, message: str, accepted: str) -> None:
        super().__init__(message)
        self.target, self.message, self.accepted = target, message, accepted


_INT_RE = re.compile(r"^-?(?:0|[1-9][0-9]{0,17})$")
_FLOAT_RE = re.compile(r"^-?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+)$")
_TRUE, _FALSE = frozenset({"true", "True", "TRUE"}), frozenset({"false", "False", "FALSE"})


def infer_scalar(text: str) -> str | int | float | bool:
    """A free property from a CSV cell: integers, decimals and true/false become typed; anything
    else (including ``"007"`` or ``"1e"``) stays a string."""
    if _INT_RE.match(text):
        return int(text)
    if _FLOAT_RE.match(text):
        return float(text)
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return text


@dataclass(frozen=True)
class Coercer:
    """Turns source values into target values. Only strings are touched: typed values from
    JSON Lines or Parquet pass through, and pydantic's lax mode parses numbers and booleans."""

    separator: str = "|"
    datetime_format: str | None = None

    def __call__(self, target: str, kind: FieldType, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if kind is FieldType.LIST:
            return self._list(target, value)
        if kind is FieldType.OBJECT:
            return self._object(target, value)
        if kind is FieldType.ANY:
            return infer_scalar(value)
        if kind is FieldType.DATETIME and self.datetime_format is not None:
            try:
                parsed = datetime.strptime(value, self.datetime_format)
            except ValueError as exc:
                raise CoercionError(
                    target,
                    f"{value!r} does not match {self.datetime_format!r}",
                    f"a date-time in the format {self.datetime_format}",
                ) from exc
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
        return value

    def _list(self, target: str, value: str) -> list[Any]:
        if value.startswith("["):
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                raise CoercionError(
                    target,
                    f"malformed JSON list: {exc}",
                    f"a JSON array or values separated by {self.separator!r}",
                ) from exc
            if isinstance(parsed, list):
                return parsed
        return [part.strip() for part in value.split(self.separator) if part.strip()]

    def _object(self, target: str, value: str) -> Any:
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise CoercionError(
                target, f"malformed JSON object: {exc}", 'a JSON object such as {"size": "M"}'
            ) from exc
        if not isinstance(parsed, dict):
            raise CoercionError(target, "expected a JSON object", 'a JSON object such as {"a": 1}')
        return parsed


def parse_assignments(specs: Iterable[str], *, option: str) -> dict[str, str]:
    """``["target=source", ...]`` (CLI ``--map`` / ``--default``) as a dict."""
    out: dict[str, str] = {}
    for spec in specs:
        target, sep, source = spec.partition("=")
        if not sep or not target.strip():
            raise InvalidInput(
                f"{option} {spec!r} is not of the form field=value",
                field=option,
                accepted="field=column, e.g. profile.country=Country",
            )
        out[target.strip()] = source.strip()
    return out


@dataclass(frozen=True)
class Exclusions:
    """``personify import --exclude``: rows to leave out on purpose and columns to ignore.

    ``FIELD=PATTERN`` leaves out every row whose ``FIELD`` (a field of the record kind, read from
    the column mapped to it, else from its default) matches the shell-style ``PATTERN``
    (``POST``, ``gift_*``; case-sensitive; on a list field, any element): postage, fees and
    manual adjustments in a shop's order lines, test accounts, a type not worth importing.
    A bare ``COLUMN`` ignores that source column (a file without ``--map`` whose extra
    column is not a field). Left-out rows are counted as skipped, never as errors, and never
    hold back the other rows.
    """

    rows: tuple[tuple[str, str], ...] = ()
    columns: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, specs: Iterable[str], kind: str) -> Exclusions:
        rows: list[tuple[str, str]] = []
        columns: set[str] = set()
        for spec in specs:
            target, sep, pattern = spec.partition("=")
            target = target.strip()
            if not target:
                raise InvalidInput(
                    f"--exclude {spec!r} names no field or column", field="exclude",
                    accepted="FIELD=PATTERN (e.g. item_id=POST, item_id='gift_*') or COLUMN",
                )
            if not sep:
                columns.add(target)
                continue
            if kind in MODELS and target_type(kind, target) is None:
                raise InvalidInput(
                    f"--exclude {spec!r}: {target!r} is not a field of {kind}",
                    field="exclude", accepted=accepted_targets(kind),
                )
            if not pattern.strip():
                raise InvalidInput(
                    f"--exclude {spec!r} has an empty pattern", field="exclude",
                    accepted="FIELD=PATTERN with a value or a shell pattern (* ? [...])",
                )
            rows.append((target, pattern.strip()))
        return cls(tuple(rows), frozenset(columns))

    def __bool__(self) -> bool:
        return bool(self.rows or self.columns)

    def excludes(self, record: Mapping[str, Any], columns: ColumnMapping) -> bool:
        """Whether ``record`` (a source row) is left out."""
        for target, pattern in self.rows:
            source = columns.mapping.get(target, target)
            value = _lookup(record, source)
            if value is None or value == "":
                value = columns.defaults.get(target)
            if value is None:
                continue
            values = value if isinstance(value, list) else (
                [v for v in value.split(columns.coercer.separator)]
                if isinstance(value, str) and target_type(columns.kind, target) is FieldType.LIST
                else [value]
            )
            if any(fnmatch.fnmatchcase(str(v).strip(), pattern) for v in values):
                return True
        return False


def _lookup(record: Mapping[str, Any], source: str) -> Any:
    """A source column, or a dotted path into nested JSON objects."""
    if source in record:
        return record[source]
    current: Any = record
    for part in source.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _assign(out: dict[str, Any], target: str, value: Any) -> None:
    parts = target.split(".")
    node = out
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {} if child is None else dict(child) if isinstance(child, Mapping) else {}
            node[part] = child
        node = child
    last = parts[-1]
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        node[last] = {**value, **node[last]}
    else:
        node[last] = value


def derive_event_id(record: Mapping[str, Any], occurrence: int) -> str:
    """A deterministic event id from a row's whole content: the same row of the same file always
    gets the same id (so a re-run stores nothing twice), and the n-th identical copy of a row in
    one file gets its own id (``-n``), so genuine repeats are kept."""
    digest = hashlib.blake2b(
        orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str),
        digest_size=12,
    ).hexdigest()
    return f"row-{digest}" if occurrence <= 1 else f"row-{digest}-{occurrence}"


@dataclass
class ColumnMapping:
    """How source records become raw domain records of one kind.

    ``mapping`` is target path -> source column (a dotted source path reads nested JSON);
    without one, every source column must itself be a target path (the export format).
    ``defaults`` fill targets the row leaves empty. Empty CSV cells count as missing.
    Events without a mapped ``event_id`` get one derived from the row (:func:`derive_event_id`).
    """

    kind: str
    mapping: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    coercer: Coercer = field(default_factory=Coercer)
    ignored: frozenset[str] = frozenset()
    """Source columns left out (``--exclude COLUMN``)."""
    _plan: list[tuple[str, str, FieldType | None]] = field(default_factory=list, init=False)
    _seen: dict[bytes, int] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.kind not in MODELS:
            raise InvalidInput(
                f"unknown record kind {self.kind!r}", field="kind", accepted="users, items, events"
            )
        for target in self.mapping:
            self._check_target(target, "mapping")
        for target in self.defaults:
            self._check_target(target, "defaults")
        self.defaults = {t: self.coercer(t, self._type(t), v) for t, v in self.defaults.items()}
        if self.mapping:
            self._plan = _ordered((t, s, self._type(t)) for t, s in self.mapping.items())

    @property
    def derives_ids(self) -> bool:
        """True when event ids come from the row content rather than a column."""
        return self.kind == "events" and "event_id" not in self.mapping

    def _type(self, target: str) -> FieldType:
        kind = target_type(self.kind, target)
        assert kind is not None
        return kind

    def _check_target(self, target: str, where: str) -> None:
        if target_type(self.kind, target) is None or target.endswith(".*"):
            raise InvalidInput(
                f"{target!r} is not a field of {self.kind}",
                field=where,
                accepted=accepted_targets(self.kind),
            )

    def bind(self, columns: list[str]) -> None:
        """Fix the plan for a source with a header (CSV, Parquet). Without an explicit mapping,
        every column must be a field path: an unknown column is an error before any row."""
        if self.mapping:
            return
        columns = [c for c in columns if c not in self.ignored]
        unknown = [c for c in columns if target_type(self.kind, c) is None]
        if unknown:
            raise InvalidInput(
                f"column(s) {', '.join(map(repr, unknown))} are not fields of {self.kind}; "
                "map them with --map field=column",
                field="mapping",
                accepted=accepted_targets(self.kind),
            )
        self._plan = _ordered((c, c, self._type(c)) for c in columns)

    def apply(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The raw domain record for one source record; raises CoercionError on a bad cell."""
        plan = self._plan or _ordered((key, key, target_type(self.kind, key)) for key in record
                                      if key not in self.ignored)
        out: dict[str, Any] = {}
        coerce = self.coercer
        for target, source, kind in plan:
            value = _lookup(record, source)
            if value is None or value == "":
                continue
            _assign(out, target, value if kind is None else coerce(target, kind, value))
        for target, value in self.defaults.items():
            if _lookup(out, target) is None:
                _assign(out, target, value)
        if self.derives_ids and "event_id" not in out:
            out["event_id"] = self._derived_id(record)
        return out

    def _derived_id(self, record: Mapping[str, Any]) -> str:
        first = derive_event_id(record, 1)
        key = bytes.fromhex(first[4:])
        occurrence = self._seen.get(key, 0) + 1
        self._seen[key] = occurrence
        return first if occurrence == 1 else derive_event_id(record, occurrence)


def _ordered(
    plan: Iterable[tuple[str, str, FieldType | None]],
) -> list[tuple[str, str, FieldType | None]]:
    """Whole mappings before their dotted sub-keys, so ``properties`` then ``properties.x``
    merge instead of overwriting."""
    return sorted(plan, key=lambda step: step[0].count("."))
