"""``personify import --exclude``: a shop's order lines with postage, fees and manual
adjustments (left out on purpose, counted as skipped) and broken rows (reported by row number)
among good ones; every good row is stored, in the same batches as the bad ones, and a
re-run stores nothing twice."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from personify.storage.registry import open_stores

ROWS = [
    # customer, sku, ordered_at, note
    ("c1", "85123A", "2026-03-01T10:00:00Z", "ok"),
    ("c1", "POST", "2026-03-01T10:00:00Z", "postage"),
    ("c2", "22423", "2026-03-02T10:00:00Z", "ok"),
    ("", "22423", "2026-03-02T11:00:00Z", "no customer"),          # bad: no user
    ("c2", "M", "2026-03-02T12:00:00Z", "manual"),
    ("c3", "BANK CHARGES", "2026-03-03T10:00:00Z", "fee"),
    ("c3", "47566", "not a date", "bad time"),                     # bad: timestamp
    ("c3", "47566", "2026-03-03T10:30:00Z", "ok"),
    ("c4", "gift_0001_10", "2026-03-04T10:00:00Z", "voucher"),
    ("c4", "POST", "31/12/2026", "postage with a bad date"),       # excluded, never an error
    ("c4", "84879", "2026-03-04T10:05:00Z", "ok"),
]
MAPS = ["--map", "user_id=customer", "--map", "item_id=sku", "--map", "timestamp=ordered_at",
        "--default", "type=purchase", "--no-progress", "--batch-size", "3"]
EXCLUDE = ["--exclude", "item_id=POST", "--exclude", "item_id=M", "-x", "item_id=BANK CHARGES",
           "--exclude", "item_id=gift_*"]


def _orders(path: Path) -> Path:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["customer", "sku", "ordered_at", "note"])
        out.writerows(ROWS)
    return path


def _stored_items(database_url: str) -> list[str]:
    with open_stores(database_url) as stores:
        events = [e for user in ("c1", "c2", "c3", "c4")
                  for e in stores.events.for_user("default", user, limit=100)]
    return sorted(e.item_id or "" for e in events)


def test_excluded_rows_are_skipped_and_bad_rows_never_lose_good_ones(
    personify: Callable[..., Result], database_url: str, tmp_path: Path
) -> None:
    path = _orders(tmp_path / "orders.csv")
    errors = tmp_path / "errors.csv"
    result = personify("import", "events", str(path), *MAPS, *EXCLUDE, "--errors", str(errors))
    assert result.exit_code == 1, result.output  # some rows were rejected
    text = " ".join(result.output.split())
    assert "rows read 11" in text and "stored 4" in text and "rejected 2" in text
    assert "skipped on purpose (--exclude, presets) 5 " in text, text
    with errors.open() as fh:
        assert [(r["row"], r["field"]) for r in csv.DictReader(fh)] == [
            ("5", "user_id"), ("8", "timestamp")]
    assert _stored_items(database_url) == ["22423", "47566", "84879", "85123A"]

    again = personify("import", "events", str(path), *MAPS, *EXCLUDE)
    assert "stored 0" in " ".join(again.output.split())
    assert _stored_items(database_url) == ["22423", "47566", "84879", "85123A"]

    everything = personify("import", "events", str(path), *MAPS)
    text = " ".join(everything.output.split())
    assert "stored 4" in text and "rejected 3" in text, text  # without the rules
    assert "POST" in _stored_items(database_url)


def test_a_column_can_be_ignored_and_bad_rules_name_the_field(
    personify: Callable[..., Result], database_url: str, tmp_path: Path
) -> None:
    items = tmp_path / "items.csv"
    items.write_text("item_id,title,internal_note\nsku-1,Mug,keep out\nPOST,Postage,fee\n")
    refused = personify("import", "items", str(items), "--no-progress")
    assert refused.exit_code == 2 and "internal_note" in refused.output
    done = personify("import", "items", str(items), "--exclude", "internal_note",
                     "--exclude", "item_id=POST", "--no-progress")
    assert done.exit_code == 0, done.output
    with open_stores(database_url) as stores:
        assert [i.item_id for i in stores.catalog.scan("default")] == ["sku-1"]

    for rule, says in (("colour=red", "'colour' is not a field of items"),
                       ("item_id=", "empty pattern"), ("=POST", "names no field")):
        bad = personify("import", "items", str(items), "--exclude", rule, "--no-progress")
        assert bad.exit_code == 2 and says in bad.output and "exclude" in bad.output, bad.output
    preset = personify("import", "all", str(items), "--preset", "online-retail", "-x",
                       "item_id=POST", "--no-progress")
    assert preset.exit_code == 2 and "drop --exclude" in preset.output, preset.output
