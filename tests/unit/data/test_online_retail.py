"""The Online Retail reader: row mapping, stable ids, cleaning, the array fast path, sampling."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from personify.data.online_retail import (
    categories_for,
    load_purchase_log,
    online_retail_interactions,
    read_online_retail,
    write_sample,
)
from personify.domain.errors import InvalidInput

ROWS = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850,United Kingdom
536366,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2,2010-12-02 09:00:00,2.95,12583,France
536366,POST,POSTAGE,1,2010-12-02 09:00:00,18,12583,France
C536367,71053,WHITE METAL LANTERN,-1,2010-12-03 10:00:00,3.39,17850,United Kingdom
536368,22139,RETROSPOT TEA SET CERAMIC 11 PC,3,2010-12-04 11:00:00,4.95,,United Kingdom
536369,22139,damaged,-10,2010-12-05 12:00:00,0,,United Kingdom
A536370,B,Adjust bad debt,1,2010-12-06 12:00:00,-11062.06,,United Kingdom
536371,85123A,WHITE HANGING HEART T-LIGHT HOLDER,1,2010-12-07 08:00:00,2.65,17850,Germany
"""


@pytest.fixture
def retail_csv(tmp_path: Path) -> Path:
    path = tmp_path / "retail.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(ROWS)
    return path


def test_users_items_and_event_mapping(retail_csv: Path) -> None:
    data = read_online_retail(retail_csv)
    users = {u.user_id: u for u in data.users}
    assert set(users) == {"17850", "12583"}
    assert users["17850"].profile.country == "Germany"  # the latest country wins
    items = {i.item_id: i for i in data.items}
    assert items["85123A"].price == pytest.approx(2.65)  # most recent sale price
    assert items["85123A"].currency == "GBP"
    assert "candles & lights" in items["85123A"].categories
    assert items["POST"].type == "service"
    assert items["22139"].title == "RETROSPOT TEA SET CERAMIC 11 PC"
    events = list(data.events)
    by_id = {e.event_id: e for e in events}
    assert "536365-2" in by_id and by_id["536365-2"].item_id == "71053"
    assert by_id["C536367-1"].type == "return" and by_id["C536367-1"].quantity == 1
    assert by_id["536368-1"].anonymous_id == "invoice:536368" and by_id["536368-1"].user_id is None
    assert by_id["536366-1"].order_id == "536366"
    assert "536369-1" not in by_id  # a stock adjustment is not a customer action
    assert not any(e.order_id == "A536370" for e in events)


def test_event_ids_are_stable_across_reads_and_anonymous_skip(retail_csv: Path) -> None:
    first = [e.event_id for e in read_online_retail(retail_csv).events]
    second = [e.event_id for e in read_online_retail(retail_csv).events]
    assert first == second and len(set(first)) == len(first)
    skipped = list(read_online_retail(retail_csv, anonymous="skip").events)
    assert all(e.user_id is not None for e in skipped)
    assert len(skipped) == len(first) - 1
    with pytest.raises(InvalidInput) as err:
        read_online_retail(retail_csv, anonymous="drop")  # type: ignore[arg-type]
    assert err.value.field == "anonymous"


def test_fast_path_applies_the_readme_cleaning(retail_csv: Path) -> None:
    data = online_retail_interactions(retail_csv)
    # cancellations, quantity <= 0 and missing customers dropped: 5 lines, 2 customers
    assert len(data.user_idx) == 5
    assert set(data.users.ids) == {"17850", "12583"}
    assert data.matrix[data.users.index("17850"), data.items.index("85123A")] == 2
    assert data.item_features["title"][data.items.index("71053")] == "WHITE METAL LANTERN"
    assert data.user_features["country"][data.users.index("12583")] == "France"
    assert data.timestamps is not None and np.all(np.diff(data.timestamps) >= 0)
    no_post = load_purchase_log(retail_csv, drop_non_products=True)
    assert "POST" not in set(no_post.stock_code.tolist())


def test_write_sample_keeps_whole_customers_deterministically(
    retail_csv: Path, tmp_path: Path
) -> None:
    a, b = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    n = write_sample(retail_csv, a, n_customers=1, seed=3)
    write_sample(retail_csv, b, n_customers=1, seed=3)
    assert a.read_bytes() == b.read_bytes()
    lines = gzip.decompress(a.read_bytes()).decode("utf-8").splitlines()
    assert len(lines) == n + 1
    customers = {line.split(",")[6] for line in lines[1:]}
    assert len(customers) == 1
    expected = sum(1 for row in ROWS.splitlines()[1:] if row.split(",")[6] in customers)
    assert n == expected
    with pytest.raises(InvalidInput):
        write_sample(retail_csv, a, n_customers=5)


def test_categories_from_keywords() -> None:
    assert categories_for("JUMBO BAG RED RETROSPOT") == ["bags"]
    assert categories_for("zzz") == []


@pytest.mark.datasets
def test_reads_the_real_file_head(datasets_dir: Path) -> None:
    path = datasets_dir / "online_retail_uci" / "online_retail.csv.gz"
    data = read_online_retail(path, limit=2000)
    assert 50 < len(data.items) < 2000 and len(data.users) > 5
    events = list(data.events)
    assert 1500 < len(events) <= 2000
    assert events[0].event_id == "536365-1" and events[0].item_id == "85123A"
