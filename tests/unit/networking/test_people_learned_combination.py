"""The learned reciprocal combination, the graph-proximity candidate source and the recent-acts
feature of the people recommender."""

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from personify.networking.candidates import candidates
from personify.networking.features import FEATURES, PairFeatures, directional
from personify.networking.model import MIN_SHARE, DirectionalModel, reciprocal
from personify.networking.recommender import PeopleRecommender
from personify.networking.state import Interaction, build_state
from personify.networking.training import (
    DEFAULT_L2,
    L2_GRID,
    fit_directional,
    select_l2,
    select_share,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _x(actor: str, target: str, hours: float, **kw: object) -> Interaction:
    return Interaction(actor, target, T0 + timedelta(hours=hours), **kw)  # type: ignore[arg-type]


def test_weighted_geometric_mean_needs_both_sides() -> None:
    assert reciprocal(0.9, 0.0, 0.75) == 0.0 and reciprocal(0.0, 0.9, 0.25) == 0.0
    assert reciprocal(0.2, 0.8, 0.5) == pytest.approx(math.sqrt(0.2 * 0.8))
    # one-sided attraction loses to balanced interest even at the largest forward share
    assert reciprocal(0.9, 0.01, 1 - MIN_SHARE) < reciprocal(0.3, 0.3, 1 - MIN_SHARE)
    # the share moves the weight: forward-heavy pairs gain with a larger forward share
    assert reciprocal(0.8, 0.2, 0.75) > reciprocal(0.8, 0.2, 0.25)


def test_the_share_is_kept_with_the_model_and_bounded() -> None:
    n = len(FEATURES)
    model = DirectionalModel(np.ones(n), -1.0, np.zeros(n), np.ones(n)).with_share(0.35)
    again = DirectionalModel.from_dict(model.to_dict())
    assert again.forward_share == 0.35
    body = model.to_dict()
    body["combination"]["forward_share"] = 0.95  # past the bound: one side alone would decide
    with pytest.raises(ValueError, match="forward_share"):
        DirectionalModel.from_dict(body)


def test_select_share_follows_the_side_that_predicts_the_validation_pairs() -> None:
    # for "q" the true partner "good" is liked by the other side (backward) only
    groups = [("q", ["good", "bad"])]
    forward = [0.1, 0.9]
    backward = [0.9, 0.2]
    share, scores = select_share(forward, backward, groups, {"q": {"good"}})
    assert share < 0.5 and scores[share] == 1.0 and scores[0.5] < 1.0 and scores[0.75] < 1.0
    # the other way round: the asking side decides
    share, _ = select_share(backward, forward, groups, {"q": {"good"}})
    assert share > 0.5


def _network() -> list[Interaction]:
    """Helpers who keep answering askers who come back; askers who comment back."""
    xs: list[Interaction] = []
    hour = 0.0
    for week in range(10):
        for i in range(8):
            asker = f"a{(week * 7 + i) % 30}"
            helper = f"h{(week * 2 + i) % 6}"
            xs.append(_x(helper, asker, hour, thread=f"t{week}_{i}", tags=("qec",), offered=True))
            if i % 2 == 0:
                xs.append(_x(asker, helper, hour + 1, thread=f"t{week}_{i}", tags=("qec",),
                             offered=False))
            hour += 20
    return xs


def test_fit_learns_a_share_on_the_validation_period_and_serves_it() -> None:
    xs = _network()
    model = fit_directional(xs)
    assert MIN_SHARE <= model.forward_share <= 1 - MIN_SHARE
    assert {f"ndcg@20_share_{s}" for s in (0.25, 0.35, 0.5, 0.65, 0.75)} <= set(model.validation)
    assert model.validation["l2"] in L2_GRID  # chosen on held-out validation people
    rec = PeopleRecommender(build_state(xs), model)
    for m in rec.recommend("a5", 5):
        assert m.score == pytest.approx(reciprocal(m.forward, m.backward, model.forward_share))


def test_graph_candidates_rank_by_adamic_adar() -> None:
    # "me" knows a hub (many contacts) and a niche contact (two contacts)
    xs = [_x("me", "hub", 1), _x("me", "niche", 2), _x("niche", "close", 3)]
    xs += [_x("hub", f"fan{i}", 4 + i) for i in range(30)]
    state = build_state(xs)
    found = candidates(state, "me", per_source=1)
    graph = [p for p, sources in found.items() if "graph" in sources]
    assert graph == ["close"]


def test_recent_acts_feature_favours_who_helps_now() -> None:
    xs = [_x("old", f"x{i}", i) for i in range(10)]  # acted a lot, long ago
    xs += [_x("new", f"y{i}", 24 * 60 + i) for i in range(3)]  # acted a little, recently
    xs += [_x("me", "z", 24 * 60 + 5)]
    state = build_state(xs)
    col = FEATURES.index("target_recent_acts")
    to_old = directional(state, PairFeatures(state, "me", "old"), True)[col]
    to_new = directional(state, PairFeatures(state, "me", "new"), True)[col]
    assert to_new > to_old > 0.0
    assert state.people["y0"].acting == 0.0 and state.people["y0"].last_acted is None


def test_select_l2_scores_every_penalty_on_held_out_people() -> None:
    rng = np.random.default_rng(0)
    people = [f"p{i}" for i in range(40)]
    groups = [(p, [f"c{j}" for j in range(10)]) for p in people]
    n = len(FEATURES)
    x = rng.standard_normal((400, n))
    y = (x[:, 0] + 0.3 * rng.standard_normal(400) > 1.2).astype(float)
    positives = {p: {f"c{j}" for j in range(10) if y[i * 10 + j]} for i, p in enumerate(people)}
    best, scores = select_l2(x, y, x, groups, positives)
    assert set(scores) == set(L2_GRID) and best in L2_GRID
    assert scores[best] == max(scores.values()) and scores[best] > 0.5
    # one person cannot be split into a fitting half and a scoring half
    assert select_l2(x[:10], y[:10], x[:10], groups[:1], positives) == (DEFAULT_L2, {})


def test_accepts_and_declines_are_explicit_labels_when_present() -> None:
    """Answers given in the validation period train the model: the declined pairs' predicted
    interest (the person asked, towards who asked) falls, the accepted ones' rises, against the
    same fit without them; answers before the validation period are not used."""
    from personify.networking.state import Decision

    xs = _network()
    end = max(x.timestamp for x in xs)
    state = build_state(xs)
    known = sorted(p for p in state.people if state.known(p))
    # helpers accept askers they answered before and decline the others, late in the history
    decisions = []
    for i, helper in enumerate(sorted(p for p in known if p.startswith("h"))):
        for j, asker in enumerate(sorted(p for p in known if p.startswith("a"))[:10]):
            accepted = asker in state.people[helper].out
            at = end - timedelta(hours=1 + i + j / 100)
            decisions.append(Decision(helper, asker, at, accepted))
    early = [Decision(d.actor, d.target, T0 - timedelta(days=1), d.accepted) for d in decisions]
    plain = fit_directional(xs, l2=10.0)
    taught = fit_directional(xs, l2=10.0, decisions=decisions)
    ignored = fit_directional(xs, l2=10.0, decisions=early)
    assert plain.validation["decisions"] == 0 and ignored.validation["decisions"] == 0
    used = taught.validation["decisions"]
    assert used > 0 and 0 < taught.validation["decisions_accepted"] < used
    assert np.allclose(ignored.weights, plain.weights)

    def mean_interest(model: DirectionalModel, accepted: bool) -> float:
        rows = [directional(state, PairFeatures(state, d.actor, d.target), True)
                for d in decisions if d.accepted is accepted]
        return float(model.predict(np.asarray(rows)).mean())

    assert mean_interest(taught, False) < mean_interest(plain, False)
    gap_plain = mean_interest(plain, True) - mean_interest(plain, False)
    gap_taught = mean_interest(taught, True) - mean_interest(taught, False)
    assert gap_taught > gap_plain


def test_weighted_fit_equals_repeated_rows() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, len(FEATURES)))
    y = (x[:, 0] + rng.normal(size=200) > 0).astype(float)
    weights = np.where(np.arange(200) < 20, 3.0, 1.0)
    repeated = np.concatenate([np.arange(200), np.arange(20), np.arange(20)])
    a = DirectionalModel.fit(x, y, l2=5.0, sample_weight=weights)
    b = DirectionalModel.fit(x[repeated], y[repeated], l2=5.0)
    # the same likelihood; only the standardisation (mean, scale of the rows) differs
    assert np.allclose(a.predict(x), b.predict(x), atol=0.02)


def test_several_label_periods_and_the_newest_chooses() -> None:
    """Three label periods by default: the penalty and share are chosen by how a model fitted
    on the earlier periods ranks the newest one's candidates, then the model is refitted on all
    three; one period falls back to the held-out-by-people penalty."""
    xs = _network()
    three = fit_directional(xs)
    assert three.validation["windows"] == 3
    assert {f"ndcg@20_newest_l2_{k:g}" for k in L2_GRID} <= set(three.validation)
    best = max(three.validation[f"ndcg@20_share_{s}"] for s in (0.25, 0.35, 0.5, 0.65, 0.75))
    assert three.validation[f"ndcg@20_share_{three.forward_share}"] == best
    assert three.validation[f"ndcg@20_newest_l2_{three.validation['l2']:g}"] == best
    one = fit_directional(xs, windows=1)
    assert one.validation["windows"] == 1
    assert {f"ndcg@20_heldout_l2_{k:g}" for k in L2_GRID} <= set(one.validation)
    # more periods, more rows: the two fits differ
    assert not np.allclose(one.weights, three.weights)
