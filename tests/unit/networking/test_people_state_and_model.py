from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from personify.networking.features import FEATURES
from personify.networking.model import DirectionalModel, harmonic
from personify.networking.recommender import PeopleRecommender
from personify.networking.state import Interaction, Profile, build_state

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _x(actor: str, target: str, hours: int, **kw: object) -> Interaction:
    return Interaction(actor, target, T0 + timedelta(hours=hours), **kw)  # type: ignore[arg-type]


def test_answers_make_the_actor_offer_and_the_target_seek() -> None:
    state = build_state([_x("ann", "bob", 1, thread="q1", tags=("qec",), offered=True)])
    ann, bob = state.people["ann"], state.people["bob"]
    assert ann.offers == {"qec": 1.0} and ann.seeks == {}
    assert bob.seeks == {"qec": 1.0} and bob.offers == {}
    assert ann.out == {"bob": 1} and bob.inn == {"ann": 1}
    assert ann.partners == {"bob"} and state.shared_threads("ann", "bob") == 1


def test_forget_removes_every_edge_and_thread_membership() -> None:
    state = build_state(
        [
            _x("ann", "bob", 1, thread="q1", tags=("qec",), offered=True),
            _x("cat", "ann", 2, thread="q1"),
        ]
    )
    state.forget("ann")
    assert "ann" not in state.people
    assert state.people["bob"].partners == set() and state.people["cat"].out == {}
    assert "ann" not in state.thread_members["q1"]
    assert all("ann" not in people for people in state.tag_people.values())


def test_declared_goals_change_topics_and_cached_topics_follow() -> None:
    state = build_state([], {"ann": Profile(topics={"qiskit": 1.0}, seeks={"mentoring": 1.0})})
    assert state.people["ann"].topics() == {"qiskit": 1.0, "mentoring": 1.0}
    state.add(_x("ann", "bob", 1, tags=("qec",), offered=False))
    assert state.people["ann"].topics()["qec"] == 1.0


def test_harmonic_mean_discounts_one_sided_interest() -> None:
    assert harmonic(0.9, 0.05) < harmonic(0.3, 0.3)
    assert harmonic(0.0, 1.0) == 0.0
    assert harmonic(0.4, 0.4) == pytest.approx(0.4)


def test_logistic_fit_recovers_the_planted_direction() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, len(FEATURES)))
    logit = 2.0 * x[:, 0] - 1.5 * x[:, 3]
    y = (rng.random(2000) < 1 / (1 + np.exp(-logit))).astype(float)
    model = DirectionalModel.fit(x, y, l2=1.0)
    assert model.weights[0] > 1.0 and model.weights[3] < -0.8
    assert np.abs(model.weights[[1, 2, 4, 5]]).max() < 0.3
    again = DirectionalModel.from_dict(model.to_dict())
    assert np.allclose(again.predict(x[:5]), model.predict(x[:5]))


def _activity_model() -> DirectionalModel:
    """Interest grows with the actor's own activity and with what the target received."""
    w = np.zeros(len(FEATURES))
    w[FEATURES.index("actor_activity")] = 2.0
    w[FEATURES.index("target_received")] = 1.0
    n = len(FEATURES)
    return DirectionalModel(weights=w, bias=-2.0, mean=np.zeros(n), scale=np.ones(n))


def test_reciprocal_scoring_prefers_the_person_likely_to_answer_back() -> None:
    # "star" receives a lot and never acts; "peer" acts a lot and receives a little.
    xs = [_x(f"fan{i}", "star", i) for i in range(12)]
    xs += [_x("peer", f"fan{i}", 20 + i) for i in range(12)]
    xs += [_x("fan0", "peer", 40), _x("me", "fan1", 41)]
    state = build_state(xs)
    model = _activity_model()
    one_sided = PeopleRecommender(state, model, mode="one_sided").recommend("me", 30)
    reciprocal = PeopleRecommender(state, model).recommend("me", 30)
    rank = lambda ms: [m.person_id for m in ms]  # noqa: E731
    assert rank(one_sided).index("star") < rank(one_sided).index("peer")
    assert rank(reciprocal).index("peer") < rank(reciprocal).index("star")
    star = next(m for m in reciprocal if m.person_id == "star")
    assert star.forward > star.backward


def test_recommendations_leave_out_self_partners_and_excluded() -> None:
    xs = [_x("me", "ann", 1), _x("ann", "bob", 2), _x("bob", "cat", 3), _x("cat", "dan", 4)]
    state = build_state(xs)
    got = PeopleRecommender(state, _activity_model()).recommend("me", 10, exclude={"cat"})
    ids = {m.person_id for m in got}
    assert "me" not in ids and "ann" not in ids and "cat" not in ids
    assert "bob" in ids
    bob = next(m for m in got if m.person_id == "bob")
    assert "graph" in bob.sources and bob.common_contacts == 1


def test_cached_ranking_follows_the_network_and_still_asks_allowed() -> None:
    xs = [_x("me", "ann", 1), _x("ann", "bob", 2), _x("ann", "cat", 3)]
    state = build_state(xs)
    rec = PeopleRecommender(state, _activity_model(), cache_size=10)
    first = [m.person_id for m in rec.recommend("me", 5)]
    assert {"bob", "cat"} <= set(first) and "me" in rec._ranked
    assert "bob" not in [m.person_id for m in rec.recommend("me", 5, allowed=lambda p: p != "bob")]
    state.add(_x("me", "bob", 4))  # now a partner: the cached ranking is stale
    assert "bob" not in [m.person_id for m in rec.recommend("me", 5)]


def test_cached_matches_are_built_once_per_network_version() -> None:
    xs = [_x("me", "ann", 1), _x("ann", "bob", 2), _x("ann", "cat", 3)]
    state = build_state(xs)
    rec = PeopleRecommender(state, _activity_model(), cache_size=10)
    first = rec.recommend("me", 5)
    again = rec.recommend("me", 5, allowed=lambda p: True)
    assert [m.person_id for m in first] == [m.person_id for m in again]
    assert all(a is b for a, b in zip(first, again, strict=True))
    state.add(_x("bob", "cat", 4))  # the network changed: rankings and matches are rebuilt
    moved = rec.recommend("me", 5)
    assert not any(a is b for a, b in zip(first, moved, strict=False))
