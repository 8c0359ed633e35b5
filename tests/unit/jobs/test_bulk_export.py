"""Bulk export: every format is re-importable into a fresh store with the same records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from personify.domain.errors import InvalidInput
from personify.domain.events import Context, Event, Location
from personify.domain.items import Item
from personify.domain.users import Profile, User
from personify.ingestion import EventIngestor
from personify.jobs.bulk_export import export_table, flat_columns
from personify.jobs.bulk_import import import_file
from personify.storage.registry import Stores

T = "shop-1"
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def fill(stores: Stores) -> None:
    stores.users.upsert(
        T,
        [
            User(
                user_id="u-1",
                anonymous_ids=["anon-1"],
                profile=Profile(
                    name="Алёна",
                    country="RU",
                    birth_year=1990,
                    skills=["python", "статистика"],
                    time_zone="Europe/Moscow",
                ),
                properties={"tier": "gold", "score": 4.5, "vip": True, "tags": ["a", "b"]},
            ),
            User(user_id="👤-2", profile=Profile(bio="emoji 🎉 bio"), restricted=True),
            *[User(user_id=f"bulk-{i:04d}") for i in range(30)],
        ],
    )
    stores.catalog.upsert(
        T,
        [
            Item(
                item_id="i-1",
                title="Чайник 🫖",
                description='line one\nline two, "quoted"',
                categories=["kitchen", "tea|coffee"],
                tags=[],
                price=19.99,
                currency="EUR",
                available=False,
                properties={"weight_g": 850, "colour": "red"},
                created_at=START,
                expires_at=START + timedelta(days=30),
            ),
            Item(item_id="i-2", type="content", title="Article"),
        ],
    )
    events = [
        Event(
            event_id=f"e-{i}",
            type="purchase" if i % 2 else "view",
            user_id="u-1",
            item_id="i-1",
            value=None,
            quantity=float(i),
            price=19.99,
            currency="EUR",
            order_id=f"o-{i}" if i % 2 else None,
            timestamp=START + timedelta(minutes=i),
            context=Context(
                device="mobile",
                channel="web",
                page="/p/1",
                location=Location(country="RU", city="Москва", latitude=55.75),
                extra={"weather": "snow ❄"},
            ),
            properties={"campaign": "весна", "n": i},
        )
        for i in range(12)
    ]
    events.append(
        Event(
            event_id="e-anon",
            type="search",
            anonymous_id="anon-9",
            query="красный чайник",
            timestamp=START,
        )
    )
    events.append(
        Event(
            event_id="e-imp",
            type="impression",
            user_id="👤-2",
            item_ids=["i-1", "i-2"],
            recommendation_id="rec-1",
            timestamp=START,
        )
    )
    result = EventIngestor(stores.events).ingest(T, events)
    assert len(result.stored) == len(events)


def snapshot(stores: Stores) -> tuple[list[dict], list[dict], list[dict]]:
    users = sorted(
        (u.model_dump(exclude={"updated_at"}) for u in stores.users.list(T, limit=100)),
        key=lambda u: u["user_id"],
    )
    items = sorted(
        (i.model_dump(exclude={"updated_at"}) for i in stores.catalog.scan(T)),
        key=lambda i: i["item_id"],
    )
    events = sorted((e.model_dump() for e in stores.events.scan(T)), key=lambda e: e["event_id"])
    return users, items, events


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".jsonl", ".jsonl.gz", ".parquet"])
def test_round_trip(stores: Stores, other_stores: Stores, tmp_path: Path, suffix: str) -> None:
    fill(stores)
    for kind in ("users", "items", "events"):
        path = tmp_path / f"{kind}{suffix}"
        exported = export_table(kind, path, stores, T)
        report = import_file(path, kind, other_stores, T, progress=False)
        assert report.rejected == 0, report.errors
        assert report.rows == exported.rows
    before, after = snapshot(stores), snapshot(other_stores)
    assert [len(x) for x in after] == [32, 2, 14]
    assert after == before


def test_flat_columns_spread_nested_records() -> None:
    columns = flat_columns("events")
    assert "context.location.city" in columns and "context.extra" in columns
    assert "context" not in columns and "context.location" not in columns
    assert "profile.country" in flat_columns("users")


def test_export_refuses_unknown_kind_and_format(stores: Stores, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        export_table("orders", tmp_path / "x.csv", stores, T)
    with pytest.raises(InvalidInput):
        export_table("users", tmp_path / "x.xlsx", stores, T)


def test_export_is_per_tenant(stores: Stores, tmp_path: Path) -> None:
    fill(stores)
    report = export_table("events", tmp_path / "other.jsonl", stores, "other-tenant")
    assert report.rows == 0
    assert (tmp_path / "other.jsonl").read_text("utf-8") == ""


def test_events_by_date_partitions_by_utc_day_and_reimports(
    stores: Stores, other_stores: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.dataset as ds

    import personify.jobs.bulk_export as bulk_export

    monkeypatch.setattr(bulk_export, "OPEN_PARTITIONS", 1)  # every day switch closes a file
    monkeypatch.setattr(bulk_export, "PAGE_SIZE", 2)
    days = [START + timedelta(days=d % 3, hours=11) for d in range(9)]  # 12:00 + 11 h: next day
    events = [
        Event(event_id=f"d-{n}", type="view", user_id=f"u-{n}", item_id="i-1", timestamp=at)
        for n, at in enumerate(days)
    ]
    assert len(EventIngestor(stores.events).ingest(T, events).stored) == 9
    root = tmp_path / "events"
    report = bulk_export.export_events_by_date(root, stores, T)
    assert report.rows == 9
    folders = sorted(p.name for p in root.iterdir())
    assert folders == ["date=2024-05-01", "date=2024-05-02", "date=2024-05-03"]
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    per_day: dict[str, int] = {}
    for day, at in zip(table["date"].to_pylist(), table["timestamp"].to_pylist(), strict=True):
        assert str(day) == at.astimezone(UTC).date().isoformat()
        per_day[str(day)] = per_day.get(str(day), 0) + 1
    assert sorted(per_day.values()) == [3, 3, 3]
    for part in sorted(root.glob("date=*/*.parquet")):  # every file imports like an export
        assert import_file(part, "events", other_stores, T, progress=False).rejected == 0
    assert other_stores.events.count(T) == 9
    with pytest.raises(InvalidInput, match="not an empty folder") as caught:
        bulk_export.export_events_by_date(root, stores, T)
    assert caught.value.field == "path"
