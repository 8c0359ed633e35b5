"""The contract every online state adapter passes (in-process and Redis).

Subclass :class:`OnlineStateContract` in a test module and provide a ``make_state`` fixture: a
callable ``(config | None) -> OnlineState`` returning a fresh, isolated state on every call.
Time is always injected (``now=``), so the decay and expiry checks are exact.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personify.domain.errors import InvalidInput
from personify.domain.events import Event
from personify.storage.online.port import OnlineState, OnlineStateConfig

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
TENANT = "shop"
MakeState = Callable[[OnlineStateConfig | None], OnlineState]
_ids = itertools.count()


def event(
    user: str,
    item: str | None,
    at: datetime,
    type: str = "view",
    *,
    country: str | None = None,
    anonymous: bool = False,
) -> Event:
    """A validated event; ``anonymous`` sends ``user`` as the anonymous id."""
    context = {"location": {"country": country}} if country else {}
    who = {"anonymous_id": user} if anonymous else {"user_id": user}
    return Event.model_validate(
        {
            "event_id": f"e{next(_ids)}",
            "type": type,
            "item_id": item,
            "timestamp": at,
            "context": context,
            **who,
        }
    )


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


class OnlineStateContract:
    """Behaviour shared by every :class:`~personify.storage.online.port.OnlineState`."""

    @pytest.fixture
    def make_state(self) -> MakeState:
        raise NotImplementedError("provide a make_state fixture")

    @pytest.fixture
    def state(self, make_state: MakeState) -> OnlineState:
        return make_state(None)

    # -- recent interactions and sessions -----------------------------------------------------

    def test_recent_is_capped_and_newest_first(self, make_state: MakeState) -> None:
        state = make_state(OnlineStateConfig(recent_cap=5))
        state.apply(TENANT, [event("u1", f"i{k}", minutes(k)) for k in range(8)], now=minutes(8))
        recent = state.user_state(TENANT, "u1", now=minutes(9)).recent
        assert [r.item_id for r in recent] == ["i7", "i6", "i5", "i4", "i3"]
        assert recent[0].timestamp == minutes(7) and recent[0].type == "view"

    def test_session_restarts_after_the_gap(self, state: OnlineState) -> None:
        times = [0, 10, 20, 120, 125]
        state.apply(TENANT, [event("u1", f"i{t}", minutes(t)) for t in times], now=minutes(125))
        during = state.user_state(TENANT, "u1", now=minutes(130))
        assert [s.item_id for s in during.session] == ["i125", "i120"]
        assert len(during.recent) == 5
        later = state.user_state(TENANT, "u1", now=minutes(125 + 31))
        assert later.session == [] and len(later.recent) == 5

    def test_events_without_an_item_and_impressions_are_ignored(self, state: OnlineState) -> None:
        shown = Event.model_validate(
            {"event_id": "imp", "type": "impression", "user_id": "u1", "item_ids": ["a", "b"],
             "timestamp": T0}
        )
        state.apply(TENANT, [shown, event("u1", None, T0, "search")], now=T0)
        assert state.user_state(TENANT, "u1", now=T0).recent == []
        assert state.trending(TENANT, 5, now=T0) == []

    def test_anonymous_events_are_keyed_by_anon_prefix(self, state: OnlineState) -> None:
        state.apply(TENANT, [event("s1", "i1", T0, anonymous=True)], now=T0)
        assert [r.item_id for r in state.user_state(TENANT, "anon:s1", now=T0).recent] == ["i1"]
        assert state.user_state(TENANT, "s1", now=T0).recent == []

    # -- exclusion ----------------------------------------------------------------------------

    def test_exclusion_windows(self, state: OnlineState) -> None:
        now = T0 + timedelta(days=20)
        state.apply(
            TENANT,
            [
                event("u1", "old", now - timedelta(days=10)),
                event("u1", "fresh", now - timedelta(days=1)),
                event("u1", "bought", now - timedelta(days=3), "purchase"),
                event("u1", "hated", now - timedelta(days=15), "dislike"),
                event("u1", "old", now - timedelta(days=12)),  # an earlier view does not rewind
            ],
            now=now,
        )
        user = state.user_state(TENANT, "u1", now=now)
        assert user.seen["old"] == now - timedelta(days=10)
        assert set(user.bought) == {"bought"} and set(user.disliked) == {"hated"}
        week = timedelta(days=7)
        assert user.excluded(seen_within=week, bought_within=week, disliked_within=week,
                             now=now) == {"fresh", "bought"}
        assert user.excluded(seen_within=week, bought_within=week, now=now) == {
            "fresh", "bought", "hated"
        }
        assert user.excluded(now=now) == {"old", "fresh", "bought", "hated"}

    def test_exclusion_marks_are_capped_to_the_newest(self, make_state: MakeState) -> None:
        state = make_state(OnlineStateConfig(exclusion_cap=3))
        state.apply(TENANT, [event("u1", f"i{k}", minutes(k)) for k in range(6)], now=minutes(6))
        assert set(state.user_state(TENANT, "u1", now=minutes(6)).seen) == {"i3", "i4", "i5"}

    # -- popularity ---------------------------------------------------------------------------

    def test_decay_matches_the_closed_form(self, make_state: MakeState) -> None:
        half_life = timedelta(hours=6)
        state = make_state(OnlineStateConfig(half_life=half_life))
        views = [("a", 0, "view"), ("a", 90, "purchase"), ("b", 200, "view"), ("a", 400, "click")]
        state.apply(TENANT, [event(f"u{k}", i, minutes(m), t)
                             for k, (i, m, t) in enumerate(views)], now=minutes(400))
        now = minutes(24 * 60)
        hl = half_life.total_seconds() / 60

        def expected(item: str) -> float:
            weights = {"view": 1.0, "click": 1.0, "purchase": 3.0}
            return sum(weights[t] * 2 ** (-(24 * 60 - m) / hl) for i, m, t in views if i == item)

        got = state.item_popularity(TENANT, ["a", "b", "zzz"], now=now)
        assert got["a"] == pytest.approx(expected("a"), rel=1e-9)
        assert got["b"] == pytest.approx(expected("b"), rel=1e-9)
        assert got["zzz"] == 0.0
        top = state.trending(TENANT, 5, now=now)
        assert [i for i, _ in top] == ["a", "b"]
        assert top[0][1] == pytest.approx(expected("a"), rel=1e-9)

    def test_fresh_events_overtake_older_bigger_counts(self, make_state: MakeState) -> None:
        state = make_state(OnlineStateConfig(half_life=timedelta(hours=1)))
        old = [event(f"u{k}", "old", minutes(0)) for k in range(3)]
        state.apply(TENANT, [*old, event("v1", "new", minutes(60))], now=minutes(60))
        assert [i for i, _ in state.trending(TENANT, 2, now=minutes(60))] == ["old", "new"]
        state.apply(TENANT, [event("v2", "new", minutes(120))], now=minutes(120))
        top = state.trending(TENANT, 2, now=minutes(120))
        assert [i for i, _ in top] == ["new", "old"]
        assert [v for _, v in top] == pytest.approx([1.5, 0.75], rel=1e-9)

    def test_trending_per_segment(self, state: OnlineState) -> None:
        batch = [
            event("u1", "pretzel", minutes(0), country="de"),
            event("u2", "pretzel", minutes(1), country="DE"),
            event("u3", "croissant", minutes(2), country="FR"),
            event("u4", "croissant", minutes(3), country="FR"),
            event("u5", "croissant", minutes(4), country="FR"),
            event("u6", "umbrella", minutes(5)),
        ]
        state.apply(TENANT, batch, segments={batch[5].event_id: ["weather:rain"]}, now=minutes(5))
        now = minutes(6)
        assert [i for i, _ in state.trending(TENANT, 5, segment="country:DE", now=now)] == [
            "pretzel"
        ]
        assert [i for i, _ in state.trending(TENANT, 5, segment="country:FR", now=now)] == [
            "croissant"
        ]
        assert [i for i, _ in state.trending(TENANT, 5, segment="weather:rain", now=now)] == [
            "umbrella"
        ]
        assert [i for i, _ in state.trending(TENANT, 2, now=now)] == ["croissant", "pretzel"]
        assert state.trending(TENANT, 5, segment="country:US", now=now) == []

    def test_a_tenants_declared_weights_count_only_for_it(self, make_state: MakeState) -> None:
        """``tenant_weights``: a tenant's own event type counts with its declared weight in
        that tenant's popularity (and not at all at 0); other tenants keep ``weights``."""
        declared = {TENANT: {"wishlist": 4.0, "peek": 0.0}}
        state = make_state(OnlineStateConfig(
            half_life=timedelta(days=365), tenant_weights=lambda t: declared.get(t, {})))
        for tenant in (TENANT, "other"):
            batch = [event(f"v{k}", "viewed", minutes(k), type="view") for k in range(3)]
            batch += [event("w", "wished", minutes(3), type="wishlist")]
            batch += [event(f"p{k}", "peeked", minutes(4), type="peek") for k in range(5)]
            state.apply(tenant, batch, now=minutes(5))
        mine = dict(state.trending(TENANT, 5, now=minutes(5)))
        assert mine["wished"] == pytest.approx(4 * mine["viewed"] / 3, rel=1e-3)
        assert "peeked" not in mine
        theirs = dict(state.trending("other", 5, now=minutes(5)))
        assert theirs["peeked"] > theirs["viewed"] > theirs["wished"]

    def test_counters_below_the_minimum_are_evicted(self, make_state: MakeState) -> None:
        state = make_state(OnlineStateConfig(half_life=timedelta(hours=1), min_popularity=0.01))
        state.apply(TENANT, [event("u1", "a", minutes(0))], now=minutes(0))
        assert state.item_popularity(TENANT, ["a"], now=minutes(6 * 60))["a"] > 0.01
        late = minutes(8 * 60)  # 2^-8 < 0.01
        assert state.trending(TENANT, 5, now=late) == []
        assert state.item_popularity(TENANT, ["a"], now=late) == {"a": 0.0}
        state.apply(TENANT, [event("u2", "b", late)], now=late)
        assert [i for i, _ in state.trending(TENANT, 5, now=late)] == ["b"]

    def test_segment_size_is_capped(self, make_state: MakeState) -> None:
        state = make_state(OnlineStateConfig(max_items_per_segment=3))
        batch = [event(f"u{k}", f"i{k}", minutes(0)) for k in range(5)]
        batch += [event("x", "i4", minutes(1)), event("y", "i3", minutes(1))]
        state.apply(TENANT, batch, now=minutes(1))
        top = state.trending(TENANT, 10, now=minutes(1))
        assert len(top) == 3 and [i for i, _ in top][:2] == ["i4", "i3"]

    # -- co-occurrence ------------------------------------------------------------------------

    def test_neighbours_come_from_the_session(self, state: OnlineState) -> None:
        state.apply(
            TENANT,
            [
                event("u1", "a", minutes(0)),
                event("u1", "b", minutes(5)),
                event("u1", "c", minutes(10), "dislike"),
                event("u1", "d", minutes(100)),  # after a gap: no pair with a / b
                event("u2", "a", minutes(0)),
                event("u2", "b", minutes(1)),
                event("u2", "e", minutes(2)),
            ],
            now=minutes(100),
        )
        assert state.neighbours(TENANT, "a", 5) == [("b", 2.0), ("e", 1.0)]
        assert state.neighbours(TENANT, "b", 1) == [("a", 2.0)]
        assert state.neighbours(TENANT, "d", 5) == []
        assert state.neighbours(TENANT, "c", 5) == []

    def test_co_occurrence_spans_batches(self, state: OnlineState) -> None:
        state.apply(TENANT, [event("u1", "a", minutes(0))], now=minutes(0))
        state.apply(TENANT, [event("u1", "b", minutes(3))], now=minutes(3))
        assert state.neighbours(TENANT, "b", 5) == [("a", 1.0)]

    def test_neighbours_are_capped_per_item(self, make_state: MakeState) -> None:
        state = make_state(OnlineStateConfig(neighbours_cap=2))
        batch = [event("u1", "hub", minutes(0))]
        batch += [event("u1", f"n{k}", minutes(k + 1)) for k in range(4)]
        batch += [event("u2", "hub", minutes(0)), event("u2", "n3", minutes(1))]
        state.apply(TENANT, batch, now=minutes(5))
        near = state.neighbours(TENANT, "hub", 10)
        assert len(near) == 2 and near[0] == ("n3", 2.0)

    # -- vectors ------------------------------------------------------------------------------

    def test_vectors_round_trip_as_float32(self, state: OnlineState) -> None:
        vector = np.linspace(-1, 1, 64)
        state.set_user_vector(TENANT, "als-3", "u1", vector, now=T0)
        got = state.get_user_vector(TENANT, "als-3", "u1", now=T0)
        assert got is not None and got.dtype == np.float32
        np.testing.assert_array_equal(got, vector.astype(np.float32))
        assert state.get_user_vector(TENANT, "als-4", "u1", now=T0) is None
        assert state.get_user_vector(TENANT, "als-3", "u2", now=T0) is None

    def test_bad_vectors_are_refused(self, state: OnlineState) -> None:
        for bad in (np.zeros((2, 2)), np.array([1.0, np.nan]), np.array([])):
            with pytest.raises(InvalidInput) as info:
                state.set_user_vector(TENANT, "m", "u1", bad, now=T0)
            assert info.value.field == "vector"

    # -- erasure ------------------------------------------------------------------------------

    def test_forget_user_erases_their_state(self, state: OnlineState) -> None:
        state.apply(TENANT, [event("u1", "a", T0), event("u1", "b", minutes(1))], now=T0)
        state.set_user_vector(TENANT, "m", "u1", np.ones(4), now=T0)
        state.forget_user(TENANT, "u1")
        user = state.user_state(TENANT, "u1", now=minutes(2))
        assert user.recent == [] and user.seen == {} and user.last_active is None
        assert state.get_user_vector(TENANT, "m", "u1", now=minutes(2)) is None
        assert state.trending(TENANT, 5, now=minutes(2)) == []
        assert state.neighbours(TENANT, "a", 5) == []
        state.forget_user(TENANT, "nobody")  # unknown users are fine

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        rows=st.lists(
            st.tuples(
                st.integers(0, 3),
                st.integers(0, 5),
                st.sampled_from(["view", "click", "purchase", "dislike", "add_to_cart"]),
                st.integers(0, 300),
                st.sampled_from([None, "DE", "FR"]),
            ),
            min_size=1,
            max_size=40,
        ),
        batch=st.integers(1, 9),
    )
    def test_forget_user_leaves_counters_as_if_they_never_existed(
        self, make_state: MakeState, rows: list[tuple[int, int, str, int, str | None]], batch: int
    ) -> None:
        events = [event(f"u{u}", f"i{i}", minutes(m), t, country=c) for u, i, t, m, c in rows]
        others = {e.event_id for e in events if e.user_id != "u0"}
        with_all, without = make_state(None), make_state(None)
        now = minutes(301)
        for start in range(0, len(events), batch):
            with_all.apply(TENANT, events[start : start + batch], now=now)
            chunk = events[start : start + batch]
            without.apply(TENANT, [e for e in chunk if e.event_id in others], now=now)
        with_all.forget_user(TENANT, "u0")
        assert_same_counters(with_all, without, [f"i{i}" for i in range(6)], now)
        assert with_all.user_state(TENANT, "u0", now=now).recent == []

    # -- identity merge -----------------------------------------------------------------------

    def test_merge_moves_anonymous_state_to_the_user(self, state: OnlineState) -> None:
        state.apply(
            TENANT,
            [
                event("s1", "a", minutes(0), anonymous=True),
                event("s1", "b", minutes(2), "purchase", anonymous=True),
                event("u1", "c", minutes(1)),
            ],
            now=minutes(2),
        )
        state.set_user_vector(TENANT, "m", "anon:s1", np.ones(3), now=minutes(2))
        state.merge_users(TENANT, "anon:s1", "u1", now=minutes(3))
        user = state.user_state(TENANT, "u1", now=minutes(3))
        assert [r.item_id for r in user.recent] == ["b", "c", "a"]
        assert set(user.seen) == {"a", "b", "c"} and set(user.bought) == {"b"}
        assert [s.item_id for s in user.session] == ["b", "c", "a"]
        assert state.user_state(TENANT, "anon:s1", now=minutes(3)).recent == []
        vector = state.get_user_vector(TENANT, "m", "u1", now=minutes(3))
        assert vector is not None and vector.tolist() == [1.0, 1.0, 1.0]
        assert dict(state.neighbours(TENANT, "c", 5)) == {"a": 1.0, "b": 1.0}

    def test_merged_user_can_be_forgotten_completely(self, state: OnlineState) -> None:
        state.apply(TENANT, [event("s1", "a", minutes(0), anonymous=True),
                             event("s1", "b", minutes(1), anonymous=True)], now=minutes(1))
        state.apply(TENANT, [event("u1", "c", minutes(2)), event("u1", "a", minutes(3))],
                    now=minutes(3))
        state.merge_users(TENANT, "s1", "u1", now=minutes(4))
        state.forget_user(TENANT, "u1")
        for item in "abc":
            assert state.neighbours(TENANT, item, 5) == []
        assert state.trending(TENANT, 5, now=minutes(4)) == []

    # -- tenants and bounds -------------------------------------------------------------------

    def test_tenants_are_isolated(self, state: OnlineState) -> None:
        state.apply("a", [event("u1", "x", minutes(0)), event("u1", "y", minutes(1))], now=T0)
        state.set_user_vector("a", "m", "u1", np.ones(2), now=T0)
        assert state.user_state("b", "u1", now=T0).recent == []
        assert state.trending("b", 5, now=T0) == []
        assert state.item_popularity("b", ["x"], now=T0) == {"x": 0.0}
        assert state.neighbours("b", "x", 5) == []
        assert state.get_user_vector("b", "m", "u1", now=T0) is None
        state.forget_user("b", "u1")
        assert len(state.user_state("a", "u1", now=minutes(1)).recent) == 2
        assert [i for i, _ in state.trending("a", 5, now=minutes(1))] == ["y", "x"]

    def test_invalid_tenant_is_refused(self, state: OnlineState) -> None:
        with pytest.raises(InvalidInput) as info:
            state.user_state("Bad:Tenant", "u1")
        assert info.value.field == "tenant"

    def test_inactive_users_expire_after_the_ttl(self, make_state: MakeState) -> None:
        state = make_state(OnlineStateConfig(user_ttl=timedelta(days=1)))
        state.apply(TENANT, [event("u1", "a", T0)], now=T0)
        state.set_user_vector(TENANT, "m", "u1", np.ones(2), now=T0)
        assert state.user_state(TENANT, "u1", now=T0 + timedelta(hours=23)).recent
        gone = T0 + timedelta(days=1, minutes=1)
        assert state.user_state(TENANT, "u1", now=gone).recent == []
        assert state.get_user_vector(TENANT, "m", "u1", now=gone) is None
        state.apply(TENANT, [event("u1", "b", gone)], now=gone)
        assert [r.item_id for r in state.user_state(TENANT, "u1", now=gone).recent] == ["b"]


def assert_same_counters(
    got: OnlineState, expected: OnlineState, items: Sequence[str], now: datetime
) -> None:
    """Popularity (every segment used by the contract) and co-occurrence agree."""
    for segment in (None, "country:DE", "country:FR"):
        a = got.item_popularity(TENANT, items, segment=segment, now=now)
        b = expected.item_popularity(TENANT, items, segment=segment, now=now)
        for item in items:
            assert math.isclose(a[item], b[item], rel_tol=1e-9, abs_tol=1e-9), (segment, item)
    for item in items:
        assert dict(got.neighbours(TENANT, item, 50)) == dict(
            expected.neighbours(TENANT, item, 50)
        ), item
