"""Train / test splitters over the event log, all keeping one index space.

Every splitter returns a ``Split(train, test)`` whose two ``Interactions`` share the input's
vocabularies, so a model fitted on ``train`` scores ``test`` users and items by index directly.
``validation_split`` carves a validation set out of *train only*: tuning never sees test data.
A published split (e.g. ``personify.data.gowalla.load_gowalla``) is used as shipped.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from personify.data.interactions import Interactions
from personify.domain.errors import InvalidInput


class Split(NamedTuple):
    train: Interactions
    test: Interactions


def _log(data: Interactions) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32],
                                      NDArray[np.float64] | None]:
    """The event-level log; interactions built from a bare matrix fall back to its entries."""
    if len(data.user_idx) or data.matrix.nnz == 0:
        return data.user_idx, data.item_idx, data.weights, data.timestamps
    coo = sp.coo_matrix(data.matrix)
    return (coo.row.astype(np.int64), coo.col.astype(np.int64),
            coo.data.astype(np.float32), None)


def subset(data: Interactions, mask: NDArray[np.bool_]) -> Interactions:
    """The events selected by ``mask`` (over the log) in the same index space."""
    u, i, w, t = _log(data)
    u, i, w = u[mask], i[mask], w[mask]
    t = None if t is None else t[mask]
    matrix = sp.csr_matrix((w, (u, i)), shape=(data.n_users, data.n_items), dtype=np.float32)
    matrix.sum_duplicates()
    return Interactions(data.users, data.items, matrix, u, i, w, t,
                        data.item_features, data.user_features)


def _check_fraction(fraction: float, name: str = "fraction") -> None:
    if not 0 < fraction < 1:
        raise InvalidInput(f"{name} must be in (0, 1), got {fraction}", field=name,
                           accepted="a float strictly between 0 and 1")


def random_holdout(
    data: Interactions, fraction: float = 0.2, *, seed: int = 0, min_train: int = 1
) -> Split:
    """Per user, a random ``fraction`` of their distinct items (all events of an item on one
    side) goes to test; users keep at least ``min_train`` items in train."""
    return per_user_holdout(data, fraction, seed=seed, min_train=min_train, temporal=False,
                            at_least_one=False)


def timestamps_carry_order(data: Interactions, *, min_share: float = 0.5) -> bool:
    """Whether the log's timestamps say in which order each person acted: present, and at least
    ``min_share`` of the people with two or more distinct items have more than one distinct
    timestamp (an import date stamped on every row, or one constant, carries no order; file
    order never counts as time)."""
    u, i, _, t = _log(data)
    if t is None or len(t) == 0:
        return False
    distinct_items = np.bincount(np.unique(u * np.int64(data.n_items) + i) // data.n_items,
                                 minlength=data.n_users)
    several = distinct_items >= 2
    if not several.any():
        return False
    pairs = np.unique(np.stack([u.astype(np.float64), np.asarray(t, dtype=np.float64)]), axis=1)
    stamps = np.bincount(pairs[0].astype(np.int64), minlength=data.n_users)
    return bool(np.mean(stamps[several] >= 2) >= min_share)


def per_user_holdout(
    data: Interactions,
    fraction: float = 0.2,
    *,
    seed: int = 0,
    min_train: int = 1,
    temporal: bool = False,
    at_least_one: bool = True,
) -> Split:
    """Per user, ``fraction`` of their distinct items (all events of an item on one side) goes
    to test (with ``at_least_one``, at least one for a user with more than ``min_train``
    items): with ``temporal`` the
    items they reached *last* (by the first time they touched each; ties at random), otherwise
    a random choice. Users keep at least ``min_train`` items in train."""
    _check_fraction(fraction)
    u, i, _, t = _log(data)
    if temporal and t is None:
        raise InvalidInput("a temporal hold-out needs event timestamps", field="timestamps",
                           accepted="interactions built with timestamps, or temporal=False")
    keys = u * np.int64(data.n_items) + i
    pairs, inverse = np.unique(keys, return_inverse=True)
    pair_user = pairs // data.n_items
    rng = np.random.default_rng(seed)
    if temporal:
        assert t is not None
        first = np.full(len(pairs), np.inf)
        np.minimum.at(first, inverse, np.asarray(t, dtype=np.float64))
        order = np.lexsort((rng.random(len(pairs)), -first, pair_user))
    else:
        order = np.lexsort((rng.random(len(pairs)), pair_user))
    counts = np.bincount(pair_user, minlength=data.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(pairs), dtype=np.int64)
    rank[order] = np.arange(len(pairs)) - starts[pair_user[order]]
    n_test = np.round(counts * fraction).astype(np.int64)
    if at_least_one:
        n_test = np.maximum(n_test, 1)
    n_test = np.minimum(n_test, np.maximum(counts - min_train, 0))
    pair_test = rank < n_test[pair_user]
    test = pair_test[inverse]
    return Split(subset(data, ~test), subset(data, test))


def temporal_split(
    data: Interactions,
    cutoff: float | None = None,
    *,
    test_days: float | None = None,
    only_known_items: bool = False,
) -> Split:
    """Events at or after ``cutoff`` (epoch seconds; or the last ``test_days`` of the log) are
    test. ``only_known_items`` drops test events on items never seen in train."""
    _, i, _, t = _log(data)
    if t is None:
        raise InvalidInput("a temporal split needs event timestamps", field="timestamps",
                           accepted="interactions built with timestamps")
    if (cutoff is None) == (test_days is None):
        raise InvalidInput("give exactly one of cutoff or test_days", field="cutoff",
                           accepted="cutoff=<epoch seconds> or test_days=<days>")
    if cutoff is None:
        assert test_days is not None
        cutoff = float(t.max()) - test_days * 86_400.0
    test = t >= cutoff
    if only_known_items:
        known = np.zeros(data.n_items, dtype=bool)
        known[i[~test]] = True
        keep = ~test | known[i]
        return Split(subset(data, ~test), subset(data, test & keep))
    return Split(subset(data, ~test), subset(data, test))


def leave_last_basket_out(
    data: Interactions, basket_keys: NDArray[np.float64] | None = None, *, min_baskets: int = 2
) -> Split:
    """Each user's last basket is test (users with at least ``min_baskets`` baskets).

    A basket is the set of a user's events sharing a key (``basket_keys`` aligned with the log,
    e.g. order numbers in time order); by default the event timestamp is the key.
    """
    u, _, _, t = _log(data)
    keys = t if basket_keys is None else np.asarray(basket_keys, dtype=np.float64)
    if keys is None:
        raise InvalidInput("baskets need timestamps or basket_keys", field="basket_keys",
                           accepted="an array aligned with the event log")
    pairs = np.unique(np.stack([u.astype(np.float64), keys]), axis=1)
    n_baskets = np.bincount(pairs[0].astype(np.int64), minlength=data.n_users)
    last = np.full(data.n_users, -np.inf)
    np.maximum.at(last, u, keys)
    test = (keys == last[u]) & (n_baskets[u] >= min_baskets)
    return Split(subset(data, ~test), subset(data, test))


def cold_start_users(
    data: Interactions, fraction: float = 0.1, *, seed: int = 0, reveal: int = 0
) -> Split:
    """A random ``fraction`` of users is held out: their events are test except the first
    ``reveal`` (in time order when timestamps exist), which stay in train as the "first clicks"
    a new user gives. Evaluate with ``fold_in=True`` so their history is folded in."""
    _check_fraction(fraction)
    u, _, _, t = _log(data)
    rng = np.random.default_rng(seed)
    active = np.unique(u)
    held = np.zeros(data.n_users, dtype=bool)
    held[rng.choice(active, size=max(1, round(len(active) * fraction)), replace=False)] = True
    test = held[u]
    if reveal > 0:
        order_key = t if t is not None else rng.random(len(u))
        order = np.lexsort((order_key, u))
        counts = np.bincount(u, minlength=data.n_users)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(len(u), dtype=np.int64)
        rank[order] = np.arange(len(u)) - starts[u[order]]
        test &= rank >= reveal
    return Split(subset(data, ~test), subset(data, test))


def cold_start_items(data: Interactions, fraction: float = 0.1, *, seed: int = 0) -> Split:
    """A random ``fraction`` of items is held out: all their events are test (train never sees
    them, so only content / hybrid models can recommend them)."""
    _check_fraction(fraction)
    _, i, _, _ = _log(data)
    rng = np.random.default_rng(seed)
    active = np.unique(i)
    held = np.zeros(data.n_items, dtype=bool)
    held[rng.choice(active, size=max(1, round(len(active) * fraction)), replace=False)] = True
    test = held[i]
    return Split(subset(data, ~test), subset(data, test))


def validation_split(
    train: Interactions,
    fraction: float = 0.2,
    *,
    method: Literal["random", "temporal"] = "random",
    seed: int = 0,
) -> Split:
    """(fit, validation) carved from ``train`` only — the data tuning may look at.

    ``random`` mirrors a per-user random holdout; ``temporal`` keeps the last ``fraction`` of
    the train period as validation (see :func:`choose_validation` for the per-user protocol
    that follows the data)."""
    if method == "random":
        return random_holdout(train, fraction, seed=seed)
    if method == "temporal":
        _check_fraction(fraction)
        _, _, _, t = _log(train)
        if t is None:
            raise InvalidInput("a temporal validation split needs timestamps", field="method",
                               accepted="random")
        return temporal_split(train, float(np.quantile(t, 1 - fraction)))
    raise InvalidInput(f"unknown validation method {method!r}", field="method",
                       accepted="random, temporal")


class ValidationProtocol(NamedTuple):
    split: Split
    name: str
    """``per-user temporal`` or ``per-user random``."""
    reason: str


def choose_validation(train: Interactions, fraction: float = 0.2, *, seed: int = 0
                      ) -> ValidationProtocol:
    """(fit, validation) carved from ``train`` by the protocol that fits the data: each person's
    last ``fraction`` of items held out when the timestamps carry order
    (:func:`timestamps_carry_order`), a random ``fraction`` of each person's items otherwise.
    Never file order: a log sorted by item id would otherwise hold out obscure items."""
    temporal = timestamps_carry_order(train)
    if temporal:
        reason = "timestamps order most people's events: each person's latest items held out"
    elif train.timestamps is None:
        reason = "no timestamps: a random share of each person's items held out"
    else:
        reason = ("timestamps do not order most people's events (one stamp per person): a "
                  "random share of each person's items held out")
    split = per_user_holdout(train, fraction, seed=seed, temporal=temporal)
    return ValidationProtocol(split, "per-user temporal" if temporal else "per-user random",
                              reason)
