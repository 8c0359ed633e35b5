"""The online-retail preset: UCI columns to users, items and events in one pass, agreeing with
the data layer's reader (same event ids and records)."""

from __future__ import annotations

import csv
import gzip
import itertools
from pathlib import Path

import pytest

from personify.data.online_retail import HEADER, read_online_retail
from personify.domain.errors import InvalidInput
from personify.jobs.bulk_import import import_file
from personify.jobs.sample_data import sample_path
from personify.storage.registry import Stores

T = "default"
LINES = [
    [
        "536365",
        "85123A",
        "WHITE HANGING HEART T-LIGHT HOLDER",
        "6",
        "2010-12-01 08:26:00",
        "2.55",
        "17850",
        "United Kingdom",
    ],
    [
        "536365",
        "71053",
        "WHITE METAL LANTERN",
        "6",
        "2010-12-01 08:26:00",
        "3.39",
        "17850",
        "United Kingdom",
    ],
    [
        "536366",
        "85123A",
        "WHITE HANGING HEART T-LIGHT HOLDER",
        "2",
        "2010-12-02 09:00:00",
        "2.65",
        "",
        "France",
    ],  # no customer: an anonymous visitor of the invoice
    [
        "C536367",
        "71053",
        "WHITE METAL LANTERN",
        "-1",
        "2010-12-03 10:00:00",
        "3.39",
        "17850",
        "EIRE",
    ],  # a cancellation: a return; the customer's latest country
    ["536368", "22139", "", "-12", "2010-12-03 11:00:00", "0", "", "United Kingdom"],
    # ^ a stock adjustment, not a customer action
    [
        "536369",
        "22139",
        "RETROSPOT TEA SET",
        "lots",
        "2010-12-04 11:00:00",
        "4.95",
        "12583",
        "France",
    ],  # bad quantity
    ["536370", "22139", "RETROSPOT TEA SET", "3", "04/12/2010", "4.95", "12583", "France"],
    ["536371", "POST", "POSTAGE", "1", "2010-12-05 12:00:00", "18", "12583", "France"],
    # ^ postage: not a product (skipped, as in the offline evaluation)
]


def write_retail(path: Path, lines: list[list[str]]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(lines)
    return path


def test_one_pass_maps_users_items_events(stores: Stores, tmp_path: Path) -> None:
    path = write_retail(tmp_path / "retail.csv.gz", LINES)
    report = import_file(path, "all", stores, T, preset="online-retail", progress=False)
    assert (report.rows, report.stored, report.skipped, report.rejected) == (8, 4, 2, 2)
    assert report.extra_records == {"users": 1, "items": 2}
    assert {(e.row, e.field) for e in report.errors} == {(7, "Quantity"), (8, "InvoiceDate")}
    purchase = stores.events.get(T, "536365-2")
    assert purchase is not None
    assert (
        purchase.type,
        purchase.user_id,
        purchase.item_id,
        purchase.quantity,
        purchase.price,
        purchase.order_id,
    ) == ("purchase", "17850", "71053", 6.0, 3.39, "536365")
    anonymous = stores.events.get(T, "536366-1")
    assert anonymous is not None and anonymous.anonymous_id == "invoice:536366"
    assert anonymous.user_id is None
    returned = stores.events.get(T, "C536367-1")
    assert returned is not None and (returned.type, returned.quantity) == ("return", 1.0)
    customer = stores.users.get(T, "17850")
    assert customer is not None and customer.profile.country == "EIRE"
    heart = stores.catalog.get(T, "85123A")
    assert heart is not None
    assert (heart.title, heart.price, heart.currency) == (
        "WHITE HANGING HEART T-LIGHT HOLDER",
        2.65,
        "GBP",
    )
    assert "candles & lights" in heart.categories
    assert stores.catalog.get(T, "POST") is None  # never recommended, never a reason


def test_preset_rerun_is_idempotent(stores: Stores, tmp_path: Path) -> None:
    path = write_retail(tmp_path / "retail.csv.gz", LINES)
    import_file(path, "all", stores, T, preset="online-retail", progress=False)
    again = import_file(path, "all", stores, T, preset="online-retail", progress=False)
    assert (again.stored, again.duplicates) == (0, 4)
    assert (stores.events.count(T), stores.users.count(T), stores.catalog.count(T)) == (4, 1, 2)


def test_preset_kinds_subset(stores: Stores, tmp_path: Path) -> None:
    path = write_retail(tmp_path / "retail.csv.gz", LINES)
    report = import_file(path, "items", stores, T, preset="online-retail", progress=False)
    assert report.stored == 2 and report.extra_records == {"items": 2}
    assert (stores.events.count(T), stores.users.count(T)) == (0, 0)


def test_preset_agrees_with_the_data_layer(stores: Stores, tmp_path: Path) -> None:
    """Regression guard: the preset's events, users and items equal read_online_retail's."""
    with gzip.open(sample_path(), "rt", encoding="utf-8", newline="") as fh:
        head = list(itertools.islice(csv.reader(fh), 1, 1501))
    path = write_retail(tmp_path / "head.csv.gz", head)
    import_file(path, "all", stores, T, preset="online-retail", progress=False)
    expected = read_online_retail(path, drop_non_products=True)
    events = {e.event_id: e.model_dump(exclude={"received_at"}) for e in stores.events.scan(T)}
    assert events == {e.event_id: e.model_dump(exclude={"received_at"}) for e in expected.events}
    users = {u.user_id: u.profile for u in stores.users.list(T, limit=1000)}
    assert users == {u.user_id: u.profile for u in expected.users}
    stamps = {"updated_at", "created_at"}
    items = {i.item_id: i for i in stores.catalog.scan(T)}
    assert {k: i.model_dump(exclude=stamps) for k, i in items.items()} == {
        i.item_id: i.model_dump(exclude=stamps) for i in expected.items
    }
    # the store stamps items seen only in cancellations (no first sale) with the import time
    assert all(
        items[i.item_id].created_at == i.created_at
        for i in expected.items
        if i.created_at is not None
    )


def test_preset_refuses_other_files(stores: Stores, tmp_path: Path) -> None:
    other = tmp_path / "users.csv"
    other.write_text("user_id,country\nu1,DE\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as info:
        import_file(other, "all", stores, T, preset="online-retail", progress=False)
    assert "InvoiceNo" in (info.value.accepted or "")
    with pytest.raises(InvalidInput) as info:
        import_file(other, "all", stores, T, preset="shopify", progress=False)
    assert info.value.field == "preset"
    with pytest.raises(InvalidInput) as info:
        import_file(other, "all", stores, T, progress=False)
    assert info.value.field == "kind"
