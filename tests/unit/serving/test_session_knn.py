"""The served session-kNN (``session_knn``): training cuts each person's log into visits by the
inactivity gap, the part votes with the past visits most like the current one, and the source
is asked by the session endpoint's chain."""

from __future__ import annotations

from personify.data.interactions import Interactions
from personify.serving.session_knn import (
    SESSION_GAP_S,
    SessionNeighbours,
    train_session_knn,
    visits,
)
from personify.serving.source_registry import TrainingLog

HOUR = 3600.0


def _log(rows: list[tuple[str, str, float]]) -> Interactions:
    users, items, times = zip(*rows, strict=True)
    return Interactions.from_arrays(list(users), list(items), None, list(times))


def test_visits_are_cut_by_the_inactivity_gap_and_numbered_by_start() -> None:
    data = _log([
        ("ann", "a", 0.0), ("ann", "b", 60.0),           # visit 1
        ("ann", "c", 60.0 + SESSION_GAP_S + 1),          # visit 3 (a gap)
        ("bob", "a", 30.0), ("bob", "d", 90.0),          # visit 2
    ])
    got = visits(data)
    assert got.n_users == 3
    by_visit: dict[str, list[str]] = {}
    for u, i in zip(got.user_idx.tolist(), got.item_idx.tolist(), strict=True):
        by_visit.setdefault(got.users.ids[u], []).append(got.items.ids[i])
    assert by_visit == {"s0": ["a", "b"], "s1": ["a", "d"], "s2": ["c"]}


def _shop() -> list[tuple[str, str, float]]:
    rows = []
    for p in range(30):  # visits go a -> b -> c, or x -> y
        start = p * 10 * HOUR
        path = ["a", "b", "c"] if p % 3 else ["x", "y"]
        rows += [(f"p{p}", item, start + k * 60) for k, item in enumerate(path)]
        rows.append((f"p{p}", "z", start + 5 * HOUR))  # a later visit of its own
    return rows


def test_the_part_votes_with_the_most_similar_past_visits() -> None:
    part = train_session_knn(TrainingLog(_log(_shop())))
    assert isinstance(part, SessionNeighbours) and part.sessions == 60
    ranked = part.recommend(["a", "b"], 3)
    assert ranked[0][0] == "c" and ranked[0][1] == 1.0
    assert {i for i, _ in ranked} & {"a", "b"} == set(), "the visit's own items are not repeated"
    assert part.recommend(["x"], 2)[0][0] == "y"
    assert "z" not in {i for i, _ in part.recommend(["x"], 5)}, "never in the same visit"
    assert part.recommend(["unknown"], 3) == []


def test_no_part_without_enough_visits_or_times() -> None:
    assert train_session_knn(TrainingLog(_log(_shop()[:8]))) is None
    untimed = Interactions.from_arrays(["u"] * 3, ["a", "b", "c"])
    assert train_session_knn(TrainingLog(untimed)) is None
