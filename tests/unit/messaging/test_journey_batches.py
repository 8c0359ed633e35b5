"""The journey engine fed a whole ingested batch (``handle_events``) ends with exactly the runs
that feeding the same events one by one (``handle_event``, in timestamp order) gives."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from personify.domain.events import Event
from personify.domain.users import User
from personify.messaging import sql_stores
from personify.messaging.journey_definitions import builtin_journeys
from personify.messaging.journeys import JourneyEngine
from personify.messaging.records import JourneyRun
from personify.messaging.state_stores import memory_state, open_state_file
from personify.runtime.messaging import HISTORY_LIMIT
from personify.storage.registry import Stores, open_stores

from .conftest import ADAPTERS, sql_database

T = "shop"
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PEOPLE = {
    "ann": User.model_validate(
        {"user_id": "ann", "profile": {"name": "Ann", "time_zone": "Europe/Berlin"}}
    ),
    "bob": User.model_validate({"user_id": "bob", "profile": {"name": "Bob"}}),
    "cid": User.model_validate({"user_id": "cid", "profile": {"name": "Cid"}}),  # no consent
    "eve": User.model_validate({"user_id": "eve", "profile": {"name": "Eve"}}),
}
CONSENTING = {"ann", "bob", "eve"}


class _Counting:
    """A journey-run store that counts which methods are called."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return method(*args, **kwargs)

        return counted


class _World:
    """One engine with its stores, event history and counted lookups."""

    def __init__(self, runs: Any, outbox: Any, suppressions: Any) -> None:
        self.runs = _Counting(runs)
        self.outbox = outbox
        self.stored: list[Event] = []
        self.user_lookups: list[str] = []
        self.engine = JourneyEngine(
            list(builtin_journeys().values()),
            self.runs,
            outbox,
            users=self._user,
            users_many=lambda t, ids: {u: PEOPLE[u] for u in ids if u in PEOPLE},
            consent=lambda t, uid, purpose: uid in CONSENTING,
            suppressions=suppressions,
            history=lambda t, uid: [e for e in self.stored if e.user_id == uid],
            send_time=lambda user, now, within: now + timedelta(hours=1),
        )

    def _user(self, tenant: str, user_id: str) -> User | None:
        self.user_lookups.append(user_id)
        return PEOPLE.get(user_id)

    def snapshot(self) -> list[tuple[Any, ...]]:
        runs: list[JourneyRun] = []
        for user in [*PEOPLE, "zed"]:
            for journey in builtin_journeys():
                run = self.runs.inner.latest(T, journey, user)
                if run is not None:
                    runs.append(run)
        return sorted(_comparable(r) for r in runs)


def _comparable(run: JourneyRun) -> tuple[Any, ...]:
    context = {k: v for k, v in run.context.items() if k != "sent"}
    return (
        run.journey,
        run.user_id,
        run.entered_at,
        run.step_index,
        str(run.status),
        run.wake_at,
        run.exit_reason,
        repr(sorted(context.items())),
        len(run.context.get("sent", [])),
        run.updated_at,
    )


@pytest.fixture(params=ADAPTERS)
def worlds(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[_World, _World]]:
    if request.param.startswith("sql-"):
        with (
            sql_database(request.param, request, tmp_path) as batch,
            sql_database("sql-sqlite", request, tmp_path) as single,
        ):
            yield tuple(  # type: ignore[misc]
                _World(
                    sql_stores.SqlJourneyStateStore(db),
                    sql_stores.SqlOutboxStore(db),
                    sql_stores.SqlSuppressionStore(db),
                )
                for db in (batch, single)
            )
        return
    opened = [
        memory_state() if request.param == "memory" else open_state_file(
            tmp_path / f"{name}.sqlite")
        for name in ("batch", "single")
    ]
    yield tuple(  # type: ignore[misc]
        _World(state.runs, state.outbox, state.suppressions) for state in opened
    )
    for state in opened:
        state.close()


def _ev(kind: str, user: str, minute: int, item: str | None = "sku1") -> Event:
    return Event(
        event_id=f"{kind}-{user}-{minute}-{item}",
        type=kind,
        user_id=user,
        item_id=item,
        timestamp=T0 + timedelta(minutes=minute),
    )


BATCHES = [
    # one person: add_to_cart then purchase in the same batch (the run starts and exits);
    # bob starts a cart run that the next batch ends
    [_ev("add_to_cart", "ann", 1), _ev("purchase", "ann", 2), _ev("add_to_cart", "bob", 3)],
    # people interleaved: ann's views of "a" start abandoned_browse (the batch is stored
    # first, so the history already holds all three), her later add_to_cart exits it (goal)
    # and does not restart abandoned_cart (3-day cooldown); bob's run from the previous batch
    # records two events and exits on purchase; cid has no consent, zed is unknown; eve's
    # cart run stays active
    [
        _ev("view", "ann", 10, "a"),
        _ev("view", "bob", 11, "x"),
        _ev("view", "ann", 12, "b"),
        _ev("view", "ann", 13, "a"),
        _ev("add_to_cart", "cid", 14),
        _ev("view", "ann", 15, "a"),
        _ev("view", "zed", 16, "a"),
        _ev("add_to_cart", "bob", 17, "y"),
        _ev("purchase", "bob", 18),
        _ev("add_to_cart", "ann", 19, "c"),
        _ev("add_to_cart", "eve", 19, "e"),
        _ev("add_to_cart", "bob", 20, "z"),
        _ev("remove_from_cart", "bob", 21, "z"),
        _ev("add_to_cart", "eve", 22, "f"),
        Event(event_id="anon", type="view", anonymous_id="anon-1", item_id="a", timestamp=T0),
    ],
]


def test_a_batch_gives_the_runs_of_one_by_one(worlds: tuple[_World, _World]) -> None:
    batch, single = worlds
    shuffle = random.Random(7)
    for minutes, events in zip((5, 30), BATCHES, strict=True):
        now = T0 + timedelta(minutes=minutes)
        for world in worlds:
            world.stored += events  # ingestion stores the batch before the listener runs
        shuffled = list(events)
        shuffle.shuffle(shuffled)  # the batch is put in timestamp order by the engine
        batch.engine.handle_events(T, shuffled, now)
        for event in sorted(events, key=lambda e: e.timestamp):
            single.engine.handle_event(T, event, now)
        assert batch.snapshot() == single.snapshot()

    runs = {(r[0], r[1]): r for r in batch.snapshot()}
    assert runs[("abandoned_cart", "ann")][4:7] == ("exited", None, "goal:purchase")
    assert runs[("abandoned_browse", "ann")][4:7] == ("exited", None, "goal:add_to_cart")
    assert runs[("abandoned_browse", "ann")][2] == T0 + timedelta(minutes=30)
    assert runs[("abandoned_cart", "bob")][4:7] == ("exited", None, "goal:purchase")
    assert runs[("abandoned_cart", "eve")][4] == "active"
    assert {user for _, user in runs} == {"ann", "bob", "eve"}
    bob = batch.runs.inner.latest(T, "abandoned_cart", "bob")
    assert bob.entered_at == T0 + timedelta(minutes=5)
    assert [(e["type"], e["item_id"]) for e in bob.context["events"]] == [
        ("view", "x"),
        ("add_to_cart", "y"),
    ]
    eve = batch.runs.inner.latest(T, "abandoned_cart", "eve")
    assert [e["item_id"] for e in eve.context["events"]] == ["f"]

    for world in worlds:  # and both advance the same way afterwards
        later = T0 + timedelta(hours=6)
        world.engine.tick(T, later)
        world.engine.tick(T, later + timedelta(hours=2))
    assert batch.snapshot() == single.snapshot()
    assert batch.outbox.counts(T) == single.outbox.counts(T)
    assert batch.outbox.counts(T).get("queued", 0) >= 1


def test_a_batch_reads_and_writes_runs_once(worlds: tuple[_World, _World]) -> None:
    batch, _ = worlds
    batch.stored += BATCHES[0]
    batch.engine.handle_events(T, BATCHES[0], T0 + timedelta(minutes=5))
    batch.runs.calls.clear()
    batch.user_lookups.clear()
    batch.stored += BATCHES[1]
    batch.engine.handle_events(T, BATCHES[1], T0 + timedelta(minutes=30))
    assert batch.runs.calls == ["active_many", "latest_many", "save_many"]
    assert batch.user_lookups == []  # one bulk lookup; zed is known to be absent


def test_an_empty_or_anonymous_batch_touches_nothing(worlds: tuple[_World, _World]) -> None:
    batch, _ = worlds
    anonymous = Event(event_id="a", type="add_to_cart", anonymous_id="x", item_id="i", timestamp=T0)
    assert batch.engine.handle_events(T, [anonymous], T0) == []
    assert batch.engine.handle_events(T, [], T0) == []
    assert batch.runs.calls == []
    assert batch.runs.inner.active(T, "x") == []


@pytest.fixture(params=["memory", "sqlite"])
def event_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'events.db'}"
    opened = open_stores(url)
    yield opened
    opened.close()


def test_abandoned_browse_batch_history_is_the_one_by_one_history(event_stores: Stores) -> None:
    """The batch path prefetches every counted person's history with ``recent_for_users``;
    one by one, each person's history is ``for_user`` (what the runtime wires). Both read the
    store after the batch was stored, so they count the same views and start the same runs."""
    stores, other = event_stores, "other-shop"
    stores.users.upsert(
        T,
        [
            User(user_id="ann"),
            User(user_id="bob"),
            User(user_id="eve"),
            User(user_id="lin", anonymous_ids=["anon-lin"]),
        ],
    )
    earlier = [  # stored by previous batches
        _ev("view", "ann", 1, "a"),
        _ev("view", "ann", 2, "a"),
        _ev("view", "bob", 3, "b"),
        _ev("view", "bob", 4, "b"),
        *(
            Event(
                event_id=f"bob-x-{k}",
                type="view",
                user_id="bob",
                item_id="x",
                timestamp=T0 + timedelta(minutes=5, seconds=k),
            )
            for k in range(HISTORY_LIMIT)
        ),  # pushes bob's views of "b" out of the newest HISTORY_LIMIT
        *(
            Event(
                event_id=f"anon-lin-{k}",
                type="view",
                anonymous_id="anon-lin",
                item_id="c",
                timestamp=T0 + timedelta(minutes=6 + k),
            )
            for k in range(2)
        ),  # lin's views before logging in, under a linked anonymous id
    ]
    stores.events.append(T, earlier)
    stores.events.append(other, [_ev("view", "eve", m, "e") for m in (1, 2, 3)])
    batch_events = [
        _ev("view", "ann", 20, "a"),  # third view of "a": starts
        _ev("view", "bob", 21, "b"),  # third of "b", but only one in the newest 200
        _ev("view", "lin", 22, "c"),  # third with the linked anonymous views: starts
        _ev("view", "eve", 23, "e"),  # her other views are another tenant's
        _ev("view", "eve", 24, "e"),
        _ev("view", "zed", 25, "a"),  # unknown person
        _ev("add_to_cart", "bob", 26, "b"),
    ]
    stores.events.append(T, batch_events)  # ingestion stores the batch before the listener
    calls: list[str] = []

    def history(tenant: str, user_id: str) -> list[Event]:
        calls.append(f"for_user:{user_id}")
        return stores.events.for_user(tenant, user_id, limit=HISTORY_LIMIT, types=["view"])

    def history_many(tenant: str, user_ids: Sequence[str]) -> dict[str, list[Event]]:
        calls.append(f"recent_for_users:{','.join(user_ids)}")
        return stores.events.recent_for_users(
            tenant, user_ids, types=["view"], limit_per_user=HISTORY_LIMIT
        )

    def engine(bulk: bool) -> JourneyEngine:
        state = memory_state()
        return JourneyEngine(
            [builtin_journeys()["abandoned_browse"]],
            state.runs,
            state.outbox,
            users=stores.users.get,
            users_many=getattr(stores.users, "get_many", None),  # as the runtime wires it
            consent=lambda t, uid, purpose: True,
            suppressions=state.suppressions,
            history=history,
            history_many=history_many if bulk else None,
            send_time=lambda user, now, within: now + timedelta(hours=1),
        )

    now = T0 + timedelta(minutes=30)
    batched, single = engine(bulk=True), engine(bulk=False)
    started = batched.handle_events(T, list(reversed(batch_events)), now)
    assert calls == ["recent_for_users:ann,bob,lin,eve"], "one bulk read, no per-person read"
    calls.clear()
    started_single = [
        run
        for event in sorted(batch_events, key=lambda e: e.timestamp)
        for run in single.handle_event(T, event, now)
    ]
    assert sorted(calls) == sorted(
        ["for_user:ann", "for_user:bob", "for_user:lin", "for_user:eve", "for_user:eve"]
    )
    assert sorted(r.user_id for r in started) == ["ann", "lin"]
    assert sorted(map(_comparable, started)) == sorted(map(_comparable, started_single))
    for user in ("ann", "bob", "eve", "lin", "zed"):
        mine = batched.runs.latest(T, "abandoned_browse", user)
        theirs = single.runs.latest(T, "abandoned_browse", user)
        assert (mine and _comparable(mine)) == (theirs and _comparable(theirs))
