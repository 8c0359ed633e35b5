"""Pure maths of the online state: log-space decay, batch planning, session pairs, merges."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from personify.storage.online import changes as ch
from personify.storage.online.decay import (
    T_REF,
    decay_rate,
    log_add,
    log_sub,
    log_weight,
    score_floor,
    value_at,
)
from personify.storage.online.port import OnlineStateConfig, daypart
from personify.testing.online_state_contracts import T0, event, minutes

CONFIG = OnlineStateConfig()


@given(st.floats(-50, 50), st.floats(-50, 50))
def test_log_add_is_the_log_of_the_sum(a: float, b: float) -> None:
    assert math.exp(log_add(a, b)) == pytest.approx(math.exp(a) + math.exp(b), rel=1e-12)


@given(st.floats(-50, 50), st.floats(0.0, 0.999))
def test_log_sub_undoes_log_add(a: float, share: float) -> None:
    b = a + math.log(share) if share > 0 else -math.inf
    left = log_sub(a, b)
    assert left is not None
    assert math.exp(left) == pytest.approx(math.exp(a) * (1 - share), rel=1e-9)


def test_log_sub_of_everything_is_gone() -> None:
    assert log_sub(3.0, 3.0) is None


def test_value_at_halves_every_half_life() -> None:
    lam = decay_rate(timedelta(days=7))
    ts = T_REF + 10_000_000
    score = log_weight(4.0, ts, lam)
    assert value_at(score, ts, lam) == pytest.approx(4.0, rel=1e-12)
    assert value_at(score, ts + 14 * 86400, lam) == pytest.approx(1.0, rel=1e-12)
    assert score < score_floor(1.01, ts + 14 * 86400, lam)


def test_scores_of_very_old_and_far_future_events_stay_finite() -> None:
    lam = decay_rate(timedelta(hours=1))
    for ts in (T_REF - 30 * 365 * 86400, T_REF + 80 * 365 * 86400):
        score = log_weight(1.0, ts, lam)
        assert math.isfinite(score)
        assert value_at(score, ts + 3600, lam) == pytest.approx(0.5, rel=1e-9)


def test_entries_skip_impressions_and_dedupe_segments() -> None:
    e1 = event("u1", "a", T0, country=" de ")
    e2 = event("s1", "b", T0, anonymous=True)
    e3 = event("u1", None, T0, "search")
    entries = ch.entries_by_user([e1, e2, e3], CONFIG, {e1.event_id: ["country:DE", "global", "x"]})
    assert list(entries) == ["u1", "anon:s1"]
    part = f"daypart:{daypart(T0)}"  # every event has a part of the day
    assert entries["u1"][0].segments == ("country:DE", part, "x")
    assert entries["anon:s1"][0].segments == (part,)


def test_session_pairs_use_the_window_and_the_gap() -> None:
    cfg = OnlineStateConfig(session_window=2)
    log = [ch.Entry(m * 60.0, "view", item, ()) for m, item in
           [(0, "a"), (1, "b"), (2, "c"), (3, "e"), (4, "e"), (60, "d")]]
    pairs = ch.session_pairs((), log, cfg)
    assert pairs[("c", "a")] == 1 and pairs[("c", "b")] == 1
    assert pairs[("e", "a")] == 0  # a left the window of the last two entries
    assert pairs[("e", "b")] == 1 and pairs[("e", "c")] == 2
    assert pairs[("d", "e")] == 0  # after the gap
    assert pairs[("a", "b")] == pairs[("b", "a")]


def test_batch_changes_continue_the_history() -> None:
    history = [ch.Entry(minutes(0).timestamp(), "view", "a", ())]
    new = ch.entries_by_user([event("u1", "b", minutes(5), "purchase")], CONFIG)
    batch = ch.batch_changes(new, {"u1": history}, CONFIG)
    assert batch.pairs == {("b", "a"): 1, ("a", "b"): 1}
    assert batch.users["u1"].bought == {"b": minutes(5).timestamp()}
    lam = decay_rate(CONFIG.half_life)
    assert batch.popularity[("global", "b")] == pytest.approx(
        log_weight(3.0, minutes(5).timestamp(), lam)
    )


def test_merged_log_is_time_ordered_and_capped() -> None:
    a = [ch.Entry(3.0, "view", "x", ()), ch.Entry(1.0, "view", "y", ())]
    b = [ch.Entry(2.0, "view", "z", ())]
    assert [e.item for e in ch.merged_log(a, b, 2)] == ["z", "x"]
    assert ch.merge_marks({"x": 1.0}, {"x": 2.0, "y": 0.5}, 1) == {"x": 2.0}
