"""Session models: next-item from the current sequence, order sensitivity, the contract."""

from __future__ import annotations

import numpy as np
import pytest

from personify.algorithms.base import Recommender
from personify.algorithms.session import MarkovTransitions, SessionKNN, session_sequences
from personify.data.interactions import Interactions
from personify.domain.errors import ConfigurationError
from personify.testing.algorithm_contracts import RecommenderContract


def sessions(seqs: list[list[str]]) -> Interactions:
    users, items, stamps = [], [], []
    for s, seq in enumerate(seqs):
        for pos, item in enumerate(seq):
            users.append(f"s{s}")
            items.append(item)
            stamps.append(1000.0 * s + pos)
    return Interactions.from_arrays(users, items, timestamps=stamps)


FUNNELS = [["a", "b", "c"]] * 5 + [["x", "y", "z"]] * 5 + [["b", "q"]]


def test_sequences_follow_timestamps_not_insertion_order() -> None:
    data = Interactions.from_arrays(["s", "s", "s"], ["c", "a", "b"], timestamps=[3.0, 1.0, 2.0])
    assert data.items.lookup(session_sequences(data)[0]) == ["a", "b", "c"]


@pytest.mark.parametrize("model", [SessionKNN(k=5), MarkovTransitions()])
def test_next_item_follows_the_funnel(model: SessionKNN | MarkovTransitions) -> None:
    data = sessions(FUNNELS)
    model.fit(data)
    ids, _ = model.recommend_for_session(data.items.indices(["a", "b"]).tolist(), 1,
                                         exclude_seen=True)
    assert data.items.lookup(ids) == ["c"]
    ids, _ = model.recommend_for_session(data.items.indices(["x"]).tolist(), 3,
                                         exclude_seen=True)
    assert set(data.items.lookup(ids[:2])) == {"y", "z"}


def test_markov_reads_order_and_vsknn_weighs_the_last_click() -> None:
    data = sessions(FUNNELS)
    markov = MarkovTransitions(window=1, history=1).fit(data)
    ids, _ = markov.recommend_for_session(data.items.indices(["b"]).tolist(), 2)
    assert data.items.lookup(ids[:1]) == ["c"]  # b -> c five times, b -> q once
    _, scores = markov.recommend_for_session(data.items.indices(["c"]).tolist(), 1)
    assert scores[0] == 0  # nothing ever followed c
    knn = SessionKNN(k=20).fit(data)
    later_x = knn.score_sessions([data.items.indices(["a", "x"]).tolist()])[0]
    later_a = knn.score_sessions([data.items.indices(["x", "a"]).tolist()])[0]
    y, b = data.items.index("y"), data.items.index("b")
    assert later_x[y] > later_x[b] and later_a[b] > later_a[y]


def test_unknown_items_are_ignored_and_bad_settings_refused() -> None:
    data = sessions(FUNNELS)
    model = SessionKNN().fit(data)
    _, scores = model.recommend_sessions([[999, -4]], 3)
    assert np.all(scores == 0)
    with pytest.raises(ConfigurationError):
        MarkovTransitions(decay=0.0).fit(data)


class TestSessionKNNContract(RecommenderContract):
    def make_model(self) -> Recommender:
        return SessionKNN(k=50)


class TestMarkovContract(RecommenderContract):
    def make_model(self) -> Recommender:
        return MarkovTransitions()
