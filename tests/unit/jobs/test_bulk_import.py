"""Bulk import: formats with a mapping, bad rows reported and never losing good ones, re-runs
and resumed runs that store nothing twice, Unicode."""

from __future__ import annotations

import csv
import gzip
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from personify.domain.errors import InvalidInput, Unavailable
from personify.jobs.bulk_import import import_file
from personify.jobs.record_sinks import ImportErasureCheck
from personify.storage.registry import Stores

T = "default"
EVENT_MAP = {
    "user_id": "customer",
    "item_id": "sku",
    "type": "action",
    "timestamp": "at",
    "quantity": "qty",
    "context.device": "device",
    "properties.campaign": "campaign",
}


def write_csv(path: Path, rows: list[dict[str, Any]], header: list[str] | None = None) -> Path:
    header = header or list(rows[0])
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(h, "") for h in header])
    return path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as fh:
        for record in records:
            fh.write((record if isinstance(record, str) else json.dumps(record)) + "\n")
    return path


def event_rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "customer": f"c{i % 7}",
            "sku": f"sku-{i % 5}",
            "action": "view" if i % 3 else "purchase",
            "at": f"2024-03-{1 + i % 28:02d}T10:{i % 60:02d}:00Z",
            "qty": str(1 + i % 4),
            "device": "mobile" if i % 2 else "desktop",
            "campaign": f"spring-{i % 2}",
        }
        for i in range(n)
    ]


def test_csv_events_with_mapping(stores: Stores, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "events.csv.gz", event_rows(30))
    report = import_file(path, "events", stores, T, mapping=EVENT_MAP, progress=False, batch_size=7)
    assert (report.rows, report.stored, report.duplicates, report.rejected) == (30, 30, 0, 0)
    assert stores.events.count(T) == 30
    events = stores.events.for_user(T, "c1", limit=100)
    assert {e.context.device for e in events} <= {"mobile", "desktop"}
    first = next(e for e in events if e.timestamp.day == 2 and e.timestamp.minute == 1)
    assert (first.item_id, first.type, first.quantity) == ("sku-1", "view", 2.0)
    assert first.properties == {"campaign": "spring-1"}
    assert first.event_id.startswith("row-")


def test_jsonl_users_with_nested_source_paths(stores: Stores, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "users.jsonl",
        [
            {
                "id": "u1",
                "address": {"country": "DE", "city": "Köln"},
                "skills": ["python", "sql"],
                "vip": True,
            },
            {"id": "u2", "address": {"country": "FR"}, "skills": "go|rust", "vip": False},
        ],
    )
    report = import_file(
        path,
        "users",
        stores,
        T,
        progress=False,
        mapping={
            "user_id": "id",
            "profile.country": "address.country",
            "profile.city": "address.city",
            "profile.skills": "skills",
            "properties.vip": "vip",
        },
    )
    assert (report.stored, report.rejected) == (2, 0)
    u1, u2 = stores.users.get(T, "u1"), stores.users.get(T, "u2")
    assert u1 is not None and u2 is not None
    assert (u1.profile.country, u1.profile.city, u1.profile.skills) == (
        "DE",
        "Köln",
        ["python", "sql"],
    )
    assert u1.properties == {"vip": True}
    assert u2.profile.skills == ["go", "rust"] and u2.properties == {"vip": False}


def test_parquet_items_with_mapping(stores: Stores, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "items.parquet"
    pq.write_table(
        pa.table(
            {
                "sku": ["a", "b", "c"],
                "name": ["Mug", "Lamp", "Rug"],
                "cost": [3.5, 20.0, None],
                "labels": [["kitchen"], ["light", "home"], []],
                "stock": [True, False, True],
            }
        ),
        path,
    )
    report = import_file(
        path,
        "items",
        stores,
        T,
        progress=False,
        mapping={
            "item_id": "sku",
            "title": "name",
            "price": "cost",
            "categories": "labels",
            "available": "stock",
        },
    )
    assert (report.rows, report.stored, report.rejected) == (3, 3, 0)
    lamp = stores.catalog.get(T, "b")
    assert lamp is not None
    assert (lamp.title, lamp.price, lamp.categories, lamp.available) == (
        "Lamp",
        20.0,
        ["light", "home"],
        False,
    )
    rug = stores.catalog.get(T, "c")
    assert rug is not None and rug.price is None and rug.categories == []


def test_bad_rows_are_reported_and_good_rows_stored(stores: Stores, tmp_path: Path) -> None:
    rows = event_rows(10)
    rows[2]["customer"] = ""  # no user and no anonymous id
    rows[4]["at"] = "yesterday-ish"
    rows[6]["action"] = "teleport"  # unknown event type
    rows[8]["qty"] = "lots"
    path = write_csv(tmp_path / "events.csv", rows)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("c1,sku-1,view\n")  # too few cells: row 12
    errors_path = tmp_path / "errors.csv"
    report = import_file(
        path, "events", stores, T, mapping=EVENT_MAP, progress=False, error_report_path=errors_path
    )
    assert (report.rows, report.stored, report.rejected) == (11, 6, 5)
    assert stores.events.count(T) == 6
    by_row = {e.row: e for e in report.errors}
    # the header is row 1, so rows[i] is row i + 2
    assert set(by_row) == {4, 6, 8, 10, 12}
    assert by_row[4].field == "user_id"
    assert by_row[6].field == "timestamp"
    assert by_row[8].field == "type" and "teleport" in by_row[8].reason
    assert by_row[10].field == "quantity"
    assert by_row[12].field is None and "cells" in by_row[12].reason
    assert all(e.accepted for e in report.errors)
    with open(errors_path, encoding="utf-8") as fh:
        written = list(csv.DictReader(fh))
    assert [int(r["row"]) for r in written] == [4, 6, 8, 10, 12]
    assert written[0]["field"] == "user_id" and written[0]["reason"]


def test_error_report_as_jsonl_and_malformed_json_lines(stores: Stores, tmp_path: Path) -> None:
    good = {
        "event_id": "e1",
        "type": "view",
        "user_id": "u",
        "item_id": "i",
        "timestamp": "2024-01-01T00:00:00Z",
    }
    path = write_jsonl(
        tmp_path / "events.jsonl.gz",
        [good, "{not json", "[1, 2]", "", {**good, "event_id": "e2", "bogus": 1}],
    )
    errors_path = tmp_path / "errors.jsonl"
    report = import_file(path, "events", stores, T, progress=False, error_report_path=errors_path)
    assert (report.rows, report.stored, report.rejected) == (4, 1, 3)
    written = [json.loads(line) for line in errors_path.read_text("utf-8").splitlines()]
    assert [w["row"] for w in written] == [2, 3, 5]
    assert "malformed JSON" in written[0]["reason"]
    assert written[2]["field"] == "bogus"


def test_reimport_creates_no_duplicates(stores: Stores, tmp_path: Path) -> None:
    rows = event_rows(25)
    rows.append(dict(rows[3]))  # an identical repeated row is a second, genuine event
    path = write_csv(tmp_path / "events.csv", rows)
    first = import_file(path, "events", stores, T, mapping=EVENT_MAP, progress=False)
    again = import_file(path, "events", stores, T, mapping=EVENT_MAP, progress=False)
    assert (first.stored, first.duplicates) == (26, 0)
    assert (again.stored, again.duplicates) == (0, 26)
    assert stores.events.count(T) == 26
    users = write_csv(
        tmp_path / "users.csv", [{"user_id": f"u{i}", "profile.country": "PL"} for i in range(5)]
    )
    for _ in range(2):
        assert import_file(users, "users", stores, T, progress=False).stored == 5
    assert stores.users.count(T) == 5


def test_interrupted_import_resumes_without_duplicates(stores: Stores, tmp_path: Path) -> None:
    rows = event_rows(40)
    half = write_csv(tmp_path / "half.csv", rows[:20])
    whole = write_csv(tmp_path / "whole.csv", rows)
    import_file(half, "events", stores, T, mapping=EVENT_MAP, progress=False)
    resumed = import_file(whole, "events", stores, T, mapping=EVENT_MAP, progress=False)
    assert (resumed.stored, resumed.duplicates) == (20, 20)
    assert stores.events.count(T) == 40


def test_unicode_survives(stores: Stores, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "items.csv",
        [
            {
                "item_id": "товар-1",
                "title": "Чайник 🫖",
                "tags": "кухня|🎁",
                "properties.note": "привет 👋",
            },
            {"item_id": "🎸", "title": "Гитара", "tags": "", "properties.note": "ok"},
        ],
    )
    report = import_file(path, "items", stores, T, progress=False)
    assert (report.stored, report.rejected) == (2, 0)
    kettle = stores.catalog.get(T, "товар-1")
    assert kettle is not None
    assert (kettle.title, kettle.tags, kettle.properties) == (
        "Чайник 🫖",
        ["кухня", "🎁"],
        {"note": "привет 👋"},
    )
    assert stores.catalog.get(T, "🎸") is not None


def test_user_errors_before_any_row(stores: Stores, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "users.csv", [{"id": "u1", "Country": "DE"}])
    with pytest.raises(InvalidInput) as info:
        import_file(path, "users", stores, T, progress=False)
    assert info.value.field == "mapping"
    with pytest.raises(InvalidInput) as info:
        import_file(path, "users", stores, T, progress=False, mapping={"user_id": "ident"})
    assert "'ident'" in info.value.message and "Country" in (info.value.accepted or "")
    with pytest.raises(InvalidInput) as info:
        import_file(tmp_path / "users.xlsx", "users", stores, T, progress=False)
    assert info.value.field == "format"
    with pytest.raises(InvalidInput) as info:
        import_file(tmp_path / "missing.csv", "users", stores, T, progress=False)
    assert info.value.field == "file"
    with pytest.raises(InvalidInput) as info:
        import_file(path, "orders", stores, T, progress=False)
    assert info.value.field == "kind"
    with pytest.raises(InvalidInput):
        import_file(path, "users", stores, "Not A Tenant", progress=False)


def test_parquet_without_pyarrow_is_unavailable(
    stores: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "items.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(Unavailable) as info:
        import_file(path, "items", stores, T, progress=False)
    assert "personify[parquet]" in (info.value.accepted or "")


def test_erased_users_stay_erased(stores: Stores, tmp_path: Path) -> None:
    """Replaying an old file must not bring back the events of an erased user."""
    stores.erasures.record(T, stores.erasures.user_id_hash(T, "c3"), datetime.now(UTC), "r-1")
    path = write_csv(tmp_path / "events.csv", event_rows(21))
    report = import_file(path, "events", stores, T, mapping=EVENT_MAP, progress=False)
    assert (report.stored, report.rejected) == (18, 3)
    assert {(e.code, e.field) for e in report.errors} == {("erased", "user_id")}
    assert stores.events.for_user(T, "c3") == []


def test_import_erasure_check_asks_once_per_user() -> None:
    asked: list[str] = []
    erased = {"gone"}

    def is_erased(tenant: str, user_id: str) -> bool:
        asked.append(user_id)
        return user_id in erased

    now = [0.0]
    check = ImportErasureCheck(is_erased, ttl=10.0, clock=lambda: now[0])
    assert [check(T, u) for u in ["a", "gone", "a", "gone", "a"]] == [
        False,
        True,
        False,
        True,
        False,
    ]
    assert asked == ["a", "gone"]
    now[0] = 11.0  # a "no" is asked again after the TTL; a "yes" never is
    assert (check(T, "a"), check(T, "gone")) == (False, True)
    assert asked == ["a", "gone", "a"]


def test_typed_networking_items_are_checked(stores: Stores, tmp_path: Path) -> None:
    """An imported event in the past or ending before it starts is a row error naming the
    field; the good rows are stored (the same rules as PUT /v1/items)."""
    soon = datetime(2099, 1, 1, 18, tzinfo=UTC).isoformat()
    path = write_jsonl(tmp_path / "items.jsonl", [
        {"item_id": "ok", "type": "event", "properties": {"starts_at": soon}},
        {"item_id": "past", "type": "event", "properties": {"starts_at": "2001-01-01T10:00:00Z"}},
        {"item_id": "ends", "type": "event", "properties": {"starts_at": soon, "ends_at": soon}},
        {"item_id": "group", "type": "group", "tags": ["qiskit"]},
    ])
    report = import_file(path, "items", stores, T, progress=False)
    assert (report.rows, report.stored, report.rejected) == (4, 2, 2)
    assert {(e.row, e.field, e.id) for e in report.errors} == {
        (2, "properties.starts_at", "past"), (3, "properties.ends_at", "ends")}
    assert sorted(stores.catalog.get_many(T, ["ok", "past", "ends", "group"])) == ["group", "ok"]
