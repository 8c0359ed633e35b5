"""The journey engine fed a whole ingested batch (``handle_events``) ends with exactly the runs
that feeding the same events one by one (``handle_event``, in timestamp order) gives."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from personify.domain.events import Event
from personify.domain.users import User
from personify.messaging import memory_stores, sqlite_stores
from personify.messaging.journey_definitions import builtin_journeys
from personify.messaging.journeys import JourneyEngine
from personify.messaging.records import JourneyRun

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


@pytest.fixture(params=["memory", "sqlite"])
def worlds(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[_World, _World]]:
    if request.param == "memory":
        yield tuple(  # type: ignore[misc]
            _World(
                memory_stores.MemoryJourneyStateStore(),
                memory_stores.MemoryOutboxStore(),
                memory_stores.MemorySuppressionStore(),
            )
            for _ in range(2)
        )
        return
    opened = []
    for name in ("batch", "single"):
        db = tmp_path / f"{name}.sqlite"
        opened.append(
            (
                sqlite_stores.SqliteJourneyStateStore(db),
                sqlite_stores.SqliteOutboxStore(db),
                sqlite_stores.SqliteSuppressionStore(db),
            )
        )
    yield _World(*opened[0]), _World(*opened[1])
    for stores in opened:
        for store in stores:
            store.close()


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
