"""The bundled Online Retail sample: present, small, attributed, and loaded idempotently."""

from __future__ import annotations

import csv
import gzip
import itertools
from pathlib import Path

from personify.data.online_retail import HEADER
from personify.jobs.sample_data import (
    last_event_id,
    load_sample,
    sample_counts,
    sample_loaded,
    sample_path,
)
from personify.storage.registry import Stores

T = "default"


def test_bundled_sample_is_small_attributed_and_in_the_source_format() -> None:
    path = sample_path()
    assert path.is_file() and path.stat().st_size < 500_000
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == HEADER
    assert len({r[6] for r in rows[1:]}) == 300
    readme = (path.parent / "README.md").read_text("utf-8")
    assert "https://doi.org/10.24432/C5BW33" in readme and "CC BY 4.0" in readme


def test_load_twice_gives_the_same_counts(stores: Stores, tmp_path: Path) -> None:
    small = tmp_path / "small.csv.gz"
    with (
        gzip.open(sample_path(), "rt", encoding="utf-8", newline="") as src,
        gzip.open(small, "wt", encoding="utf-8", newline="") as dst,
    ):
        csv.writer(dst).writerows(itertools.islice(csv.reader(src), 801))
    assert not sample_loaded(stores, T, small)
    first = load_sample(stores, T, path=small)
    counts = sample_counts(stores, T)
    kept = first.rows - first.skipped  # postage, fees and manual lines are skipped
    assert first.stored == counts.events == kept > 700 and counts.users > 0 and counts.items > 0
    assert sample_loaded(stores, T, small)
    assert stores.events.get(T, last_event_id(small) or "") is not None
    second = load_sample(stores, T, path=small)
    assert (second.stored, second.duplicates) == (0, kept)
    assert sample_counts(stores, T) == counts


def test_the_sample_holds_no_postage_fees_or_manual_lines(stores: Stores) -> None:
    """The demo never says "because you bought POSTAGE": non-product stock codes are skipped
    (as in the offline evaluation), neither items nor events."""
    from personify.data.online_retail import NON_PRODUCT_CODES

    with gzip.open(sample_path(), "rt", encoding="utf-8", newline="") as fh:
        codes = {r[1].strip() for r in itertools.islice(csv.reader(fh), 1, None)}
    assert codes & NON_PRODUCT_CODES, "the raw sample has such lines"
    report = load_sample(stores, T)
    assert report.skipped > 0
    kept = {item.item_id for item in stores.catalog.scan(T)}
    assert not kept & NON_PRODUCT_CODES
    assert not {e.item_id for e in stores.events.scan(T)} & NON_PRODUCT_CODES
    assert sample_loaded(stores, T)
