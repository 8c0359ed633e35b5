"""Column mappings: target paths from the domain models, CSV coercion, derived event ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from personify.domain.errors import InvalidInput
from personify.domain.users import User
from personify.jobs.column_mapping import (
    Coercer,
    CoercionError,
    ColumnMapping,
    FieldType,
    derive_event_id,
    field_types,
    infer_scalar,
    parse_assignments,
    target_type,
)


def test_field_types_follow_the_domain_models() -> None:
    users = field_types(User)
    assert users["profile.country"] is FieldType.STR
    assert users["profile.birth_year"] is FieldType.INTEGER
    assert users["profile.skills"] is FieldType.LIST
    assert users["restricted"] is FieldType.BOOL
    assert users["properties.*"] is FieldType.ANY
    assert target_type("events", "context.location.latitude") is FieldType.NUMBER
    assert target_type("events", "context.extra.weather") is FieldType.ANY
    assert target_type("items", "properties.size") is FieldType.ANY
    assert target_type("items", "colour") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", 12),
        ("-3", -3),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("true", True),
        ("FALSE", False),
        ("007", "007"),
        ("1e", "1e"),
        ("M", "M"),
        ("", ""),
    ],
)
def test_infer_scalar_keeps_codes_as_strings(text: str, expected: object) -> None:
    value = infer_scalar(text)
    assert value == expected and type(value) is type(expected)


def test_parse_assignments_and_bad_specs() -> None:
    assert parse_assignments(["user_id=id", "profile.country = Country"], option="--map") == {
        "user_id": "id",
        "profile.country": "Country",
    }
    with pytest.raises(InvalidInput) as info:
        parse_assignments(["user_id"], option="--map")
    assert info.value.field == "--map"


def test_unknown_target_is_refused_naming_accepted_fields() -> None:
    with pytest.raises(InvalidInput) as info:
        ColumnMapping("users", {"profile.colour": "c"})
    assert info.value.field == "mapping"
    assert "profile.country" in (info.value.accepted or "")


def test_apply_nests_splits_and_infers() -> None:
    mapping = ColumnMapping(
        "items",
        {
            "item_id": "sku",
            "categories": "cats",
            "properties": "props",
            "properties.size": "size",
            "price": "price",
            "available": "in_stock",
        },
        defaults={"type": "product", "tags": "sale|new"},
    )
    raw = mapping.apply(
        {
            "sku": "A1",
            "cats": "kitchen| mugs |",
            "props": '{"brand": "Acme"}',
            "size": "42",
            "price": "",
            "in_stock": "false",
        }
    )
    assert raw == {
        "item_id": "A1",
        "categories": ["kitchen", "mugs"],
        "properties": {"brand": "Acme", "size": 42},
        "available": "false",
        "type": "product",
        "tags": ["sale", "new"],
    }


def test_lists_may_be_json_arrays_and_objects_must_be_json() -> None:
    coerce = Coercer()
    assert coerce("tags", FieldType.LIST, '["a|b", "c"]') == ["a|b", "c"]
    with pytest.raises(CoercionError) as info:
        coerce("properties", FieldType.OBJECT, "[1, 2]")
    assert info.value.target == "properties"


def test_datetime_format_parses_and_reports() -> None:
    coerce = Coercer(datetime_format="%d/%m/%Y %H:%M")
    assert coerce("timestamp", FieldType.DATETIME, "01/12/2010 08:26") == datetime(
        2010, 12, 1, 8, 26, tzinfo=UTC
    )
    with pytest.raises(CoercionError) as info:
        coerce("timestamp", FieldType.DATETIME, "2010-12-01")
    assert "%d/%m/%Y %H:%M" in info.value.accepted


def test_identity_binding_refuses_unknown_columns() -> None:
    mapping = ColumnMapping("users")
    with pytest.raises(InvalidInput) as info:
        mapping.bind(["user_id", "Country"])
    assert "'Country'" in info.value.message
    mapping.bind(["user_id", "profile.country"])
    assert mapping.apply({"user_id": "u1", "profile.country": "DE"}) == {
        "user_id": "u1",
        "profile": {"country": "DE"},
    }


def test_derived_event_ids_are_stable_and_count_repeats() -> None:
    row = {"user": "u1", "item": "i1", "when": "2024-01-01T00:00:00Z"}
    first, second = (
        ColumnMapping("events", {"user_id": "user"}),
        ColumnMapping("events", {"user_id": "user"}),
    )
    ids = [first.apply(row)["event_id"] for _ in range(3)]
    assert ids == [second.apply(row)["event_id"] for _ in range(3)]
    assert len(set(ids)) == 3
    assert ids[0] == derive_event_id(row, 1) and ids[1] == derive_event_id(row, 2)
    other = first.apply({**row, "item": "i2"})["event_id"]
    assert other not in ids


def test_mapped_event_id_is_not_derived() -> None:
    mapping = ColumnMapping("events", {"event_id": "id", "user_id": "user"})
    assert mapping.apply({"id": "e-1", "user": "u"}) == {"event_id": "e-1", "user_id": "u"}
    assert "event_id" not in mapping.apply({"id": "", "user": "u"})
