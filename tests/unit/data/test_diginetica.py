"""Diginetica sessions: ordering by timeframe, filtering, the temporal session split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from personify.algorithms.session import session_sequences
from personify.data.diginetica import read_diginetica, split_sessions_by_date
from personify.domain.errors import InvalidInput

VIEWS = """session_id;user_id;item_id;timeframe;eventdate
1;NA;10;500;2016-05-01
1;NA;11;100;2016-05-01
2;NA;10;0;2016-05-02
2;NA;12;90;2016-05-02
3;NA;13;0;2016-05-03
4;NA;11;0;2016-05-20
4;NA;99;5;2016-05-20
4;NA;12;9;2016-05-20
5;NA;98;0;2016-05-21
5;NA;97;1;2016-05-21
"""


@pytest.fixture
def views(tmp_path: Path) -> Path:
    path = tmp_path / "views.csv"
    path.write_text(VIEWS, encoding="utf-8")
    return path


def test_sessions_are_ordered_by_timeframe_and_singletons_dropped(views: Path) -> None:
    log = read_diginetica(views)
    assert log.session_ids == ["1", "2", "4", "5"]
    assert log.sequences[0] == ["11", "10"]
    assert np.all(np.diff(log.dates) >= 0)


def test_temporal_split_keeps_only_known_items_in_test(views: Path) -> None:
    train, test = split_sessions_by_date(read_diginetica(views), test_days=7)
    assert train.session_ids == ["1", "2"]
    assert test.session_ids == ["4"] and test.sequences == [["11", "12"]]  # 99 unknown


def test_to_interactions_round_trips_the_order(views: Path) -> None:
    log = read_diginetica(views)
    data = log.to_interactions()
    seqs = [data.items.lookup(s) for s in session_sequences(data)]
    assert seqs == log.sequences


def test_item_support_filter_and_bad_header(views: Path, tmp_path: Path) -> None:
    log = read_diginetica(views, min_item_support=2)
    assert all(item in {"10", "11", "12"} for seq in log.sequences for item in seq)
    bad = tmp_path / "bad.csv"
    bad.write_text("a;b\n1;2\n", encoding="utf-8")
    with pytest.raises(InvalidInput):
        read_diginetica(bad)


@pytest.mark.datasets
def test_reads_the_shared_sample(datasets_dir: Path) -> None:
    log = read_diginetica(datasets_dir / "diginetica_sample_srgnn" / "sample_train-item-views.csv")
    assert 1500 < len(log) < 2986 and all(len(s) >= 2 for s in log.sequences)
