"""Splitters keep one index space and never leak test events into train."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from personify.data import splits
from personify.data.interactions import Interactions
from personify.domain.errors import InvalidInput


def make_data(n_users: int = 30, n_items: int = 40, per_user: int = 10) -> Interactions:
    rng = np.random.default_rng(0)
    users, items, times = [], [], []
    t = 1.7e9
    for u in range(n_users):
        for i in rng.choice(n_items, per_user, replace=False):
            users.append(f"u{u}")
            items.append(f"i{i}")
            t += 3600
            times.append(t)
    return Interactions.from_arrays(users, items, timestamps=times)


def pairs(m: sp.csr_matrix) -> set[tuple[int, int]]:
    coo = sp.coo_matrix(m)
    return set(zip(coo.row.tolist(), coo.col.tolist(), strict=True))


def test_random_holdout_fraction_disjoint_and_same_space() -> None:
    data = make_data()
    train, test = splits.random_holdout(data, 0.2, seed=1)
    assert train.users is data.users and test.items is data.items
    assert not pairs(train.matrix) & pairs(test.matrix)
    assert pairs(train.matrix) | pairs(test.matrix) == pairs(data.matrix)
    np.testing.assert_array_equal(np.diff(test.matrix.indptr), 2)  # 20 % of 10 per user
    other = splits.random_holdout(data, 0.2, seed=2).test
    assert pairs(other.matrix) != pairs(test.matrix)
    assert pairs(splits.random_holdout(data, 0.2, seed=1).test.matrix) == pairs(test.matrix)


def test_random_holdout_keeps_min_train() -> None:
    data = Interactions.from_arrays(["a", "b", "b"], ["x", "x", "y"])
    train, test = splits.random_holdout(data, 0.5)
    assert train.matrix[0].nnz == 1 and test.matrix[0].nnz == 0
    assert train.matrix[1].nnz == 1 and test.matrix[1].nnz == 1


def test_temporal_split_by_cutoff_and_days() -> None:
    data = make_data()
    assert data.timestamps is not None
    cutoff = float(np.quantile(data.timestamps, 0.75))
    train, test = splits.temporal_split(data, cutoff)
    assert train.timestamps is not None and test.timestamps is not None
    assert train.timestamps.max() < cutoff <= test.timestamps.min()
    _, last = splits.temporal_split(data, test_days=1.0)
    assert last.timestamps is not None
    assert len(last.timestamps) == 25  # one event an hour, both ends of the 24 h included
    with pytest.raises(InvalidInput):
        splits.temporal_split(data)


def test_temporal_split_only_known_items() -> None:
    data = Interactions.from_arrays(["a", "a", "b"], ["x", "y", "z"], timestamps=[1, 2, 3])
    train, test = splits.temporal_split(data, 2.0, only_known_items=True)
    assert test.matrix.nnz == 0 and train.matrix.nnz == 1


def test_leave_last_basket_out() -> None:
    data = Interactions.from_arrays(
        ["a", "a", "a", "a", "b"], ["x", "y", "z", "w", "x"], timestamps=[1, 1, 5, 5, 2]
    )
    train, test = splits.leave_last_basket_out(data)
    assert pairs(test.matrix) == {(0, 2), (0, 3)}
    assert pairs(train.matrix) == {(0, 0), (0, 1), (1, 0)}  # b has a single basket
    keys = np.array([1, 2, 2, 2, 7], dtype=np.float64)
    _, test2 = splits.leave_last_basket_out(data, keys)
    assert pairs(test2.matrix) == {(0, 1), (0, 2), (0, 3)}


def test_cold_start_users_and_items() -> None:
    data = make_data()
    train, test = splits.cold_start_users(data, 0.2, seed=0)
    held = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    assert len(held) == 6
    assert all(train.matrix[u].nnz == 0 for u in held)
    train_r, test_r = splits.cold_start_users(data, 0.2, seed=0, reveal=3)
    assert all(train_r.matrix[u].nnz == 3 for u in held)
    assert test_r.timestamps is not None and train_r.timestamps is not None
    train_i, test_i = splits.cold_start_items(data, 0.25, seed=0)
    held_items = np.flatnonzero(np.asarray(test_i.matrix.sum(axis=0)).ravel() > 0)
    assert np.asarray(train_i.matrix[:, held_items].sum()) == 0
    assert len(held_items) == 10


def test_validation_split_is_carved_from_train_only() -> None:
    data = make_data()
    train, test = splits.random_holdout(data, 0.2)
    fit, valid = splits.validation_split(train, 0.25)
    assert pairs(fit.matrix) | pairs(valid.matrix) == pairs(train.matrix)
    assert not pairs(valid.matrix) & pairs(test.matrix)
    fit_t, valid_t = splits.validation_split(train, 0.25, method="temporal")
    assert fit_t.timestamps is not None and valid_t.timestamps is not None
    assert fit_t.timestamps.max() < valid_t.timestamps.min()
    with pytest.raises(InvalidInput):
        splits.validation_split(train, 1.5)


def _shuffled_log(times: list[float] | None) -> Interactions:
    """Eight people with ten items each, the log sorted by item id (not by time)."""
    rows = sorted(((f"u{u}", f"i{(u * 3 + j) % 25:02d}", 1.7e9 + 60.0 * j)
                   for u in range(8) for j in range(10)), key=lambda r: r[1])
    return Interactions.from_arrays([r[0] for r in rows], [r[1] for r in rows],
                                    timestamps=times if times is None else [r[2] for r in rows])


def test_validation_protocol_follows_the_timestamps_not_the_file_order() -> None:
    timed = _shuffled_log([0.0])
    chosen = splits.choose_validation(timed, 0.2, seed=0)
    assert chosen.name == "per-user temporal" and "timestamps order" in chosen.reason
    fit, valid = chosen.split
    assert fit.timestamps is not None and valid.timestamps is not None
    # each person's held-out items are their latest ones, whatever the rows' order
    for u in range(timed.n_users):
        held = valid.timestamps[valid.user_idx == u]
        kept = fit.timestamps[fit.user_idx == u]
        assert held.size == 2 and held.min() > kept.max()
    untimed = _shuffled_log(None)
    chosen = splits.choose_validation(untimed, 0.2, seed=0)
    assert chosen.name == "per-user random" and "no timestamps" in chosen.reason
    assert np.all(np.diff(chosen.split.test.matrix.indptr) == 2)
    # one stamp per row for everybody (an import date) carries no order
    flat = Interactions.from_arrays(list(untimed.users.lookup(untimed.user_idx)),
                                    list(untimed.items.lookup(untimed.item_idx)),
                                    timestamps=[1.7e9] * len(untimed.user_idx))
    assert not splits.timestamps_carry_order(flat)
    assert splits.choose_validation(flat).name == "per-user random"
    # the random hold-out does not follow the item-id order of the file: across people,
    # the held-out items are not just the last ids of each
    last_ids = {max(untimed.item_idx[untimed.user_idx == u]) for u in range(untimed.n_users)}
    held_ids = set(chosen.split.test.item_idx.tolist())
    assert held_ids - last_ids


def test_per_user_holdout_keeps_one_item_in_train() -> None:
    data = Interactions.from_arrays(["a", "a", "b"], ["x", "y", "x"], timestamps=[1.0, 2.0, 3.0])
    fit, valid = splits.per_user_holdout(data, 0.2, temporal=True)
    assert valid.matrix[0].nnz == 1 and valid.matrix[0, data.items.index("y")] == 1
    assert valid.matrix[1].nnz == 0 and fit.matrix[1].nnz == 1
