"""Item updates as journey triggers: detection, the catalogue watcher, the change queue and the
viewer index (memory and SQLite adapters), and the engine's windowed audiences."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from personify.domain.errors import InvalidInput
from personify.domain.items import Item, ItemPatch
from personify.domain.users import User
from personify.messaging import sql_stores
from personify.messaging.item_updates import (
    BACK_IN_STOCK,
    PRICE_DROPPED,
    ItemChange,
    ItemChangeWatcher,
    detect_item_changes,
)
from personify.messaging.journey_definitions import builtin_journeys, parse_journey
from personify.messaging.journeys import JourneyEngine
from personify.messaging.state_stores import memory_state, open_state_file
from personify.storage.registry import open_stores

from .conftest import ADAPTERS, sql_database

T = "shop"


def _kinds(before: Item | None, after: Item, now: datetime) -> list[str]:
    return [c.kind for c in detect_item_changes(T, before, after, now)]


def test_detects_price_drops_and_restocks_only(clock) -> None:
    now = clock()
    base = Item(item_id="p", title="Lamp", price=100.0, currency="EUR")
    assert _kinds(None, base, now) == []  # a new item
    assert _kinds(base, base.model_copy(update={"price": 120.0}), now) == []
    assert _kinds(base, base.model_copy(update={"price": 90.0}), now) == [PRICE_DROPPED]
    assert _kinds(base, base.model_copy(update={"price": 90.0, "currency": "USD"}), now) == []
    assert _kinds(base, base.model_copy(update={"price": 90.0, "hidden": True}), now) == []
    assert _kinds(base, base.model_copy(update={"price": None}), now) == []
    gone = base.model_copy(update={"available": False})
    assert _kinds(gone, base, now) == [BACK_IN_STOCK]
    assert _kinds(gone, base.model_copy(update={"price": 50.0}), now) == [
        PRICE_DROPPED, BACK_IN_STOCK]
    assert _kinds(base, gone.model_copy(update={"price": 50.0}), now) == []  # still out
    [drop] = detect_item_changes(T, base, base.model_copy(update={"price": 75.0}), now)
    assert drop.drop_percent == 25.0
    assert drop.event_context() == {
        "type": "item.price_dropped", "item_id": "p", "item_title": "Lamp", "old_price": 100.0,
        "new_price": 75.0, "price": 75.0, "currency": "EUR", "drop_percent": 25.0}


def test_watcher_compares_writes_only_for_tenants_that_listen(clock) -> None:
    with open_stores("memory://") as opened:
        inner = opened.catalog
        inner.upsert(T, [Item(item_id="a", price=10.0),
                         Item(item_id="b", price=10.0, available=False)])
        inner.upsert("quiet", [Item(item_id="a", price=10.0)])
        seen: list[tuple[str, list[ItemChange]]] = []
        reads: list[str] = []

        class CountingCatalog:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            def get_many(self, tenant: str, item_ids: Any) -> dict[str, Item]:
                reads.append(tenant)
                return inner.get_many(tenant, item_ids)

        watcher = ItemChangeWatcher(CountingCatalog(), lambda t, c: seen.append((t, c)),  # type: ignore[arg-type]
                                    wants=lambda tenant: tenant == T, clock=clock)
        watcher.upsert(T, [Item(item_id="a", price=8.0), Item(item_id="c", price=1.0)])
        watcher.patch(T, "b", ItemPatch(available=True))
        watcher.upsert("quiet", [Item(item_id="a", price=1.0)])
        assert [(t, [(c.item_id, c.kind) for c in cs]) for t, cs in seen] == [
            (T, [("a", PRICE_DROPPED)]), (T, [("b", BACK_IN_STOCK)])]
        assert reads == [T, T]  # no read before the write of a tenant nobody listens to
        assert watcher.get(T, "a").price == 8.0  # everything else is the wrapped store's
        assert inner.get("quiet", "a").price == 1.0


@pytest.fixture(params=ADAPTERS)
def queue_and_views(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    if request.param.startswith("sql-"):
        with sql_database(request.param, request, tmp_path) as db:
            yield sql_stores.SqlItemChangeStore(db), sql_stores.SqlItemViewStore(db)
        return
    state = memory_state() if request.param == "memory" else open_state_file(
        tmp_path / "messaging.sqlite")
    yield state.item_changes, state.item_views
    state.close()


def test_change_queue_leases_and_forgets(queue_and_views, clock) -> None:
    queue, _ = queue_and_views
    now = clock()
    old = ItemChange(T, "x", PRICE_DROPPED, now - timedelta(days=2), old_price=2.0, new_price=1.0)
    fresh = ItemChange(T, "p", BACK_IN_STOCK, now, title="Lamp", currency="EUR", new_price=3.5)
    queue.record([old, fresh])
    assert queue.prune(now - timedelta(days=1)) == 1
    [(change_id, claimed)] = queue.claim(now, limit=10, lease=timedelta(minutes=5))
    assert claimed == fresh
    assert queue.claim(now, limit=10, lease=timedelta(minutes=5)) == []  # leased
    later = now + timedelta(minutes=6)
    [(again, _)] = queue.claim(later, limit=10, lease=timedelta(minutes=5))  # a crash: redo
    assert again == change_id
    queue.done([change_id])
    assert queue.claim(later + timedelta(hours=1), limit=10, lease=timedelta(minutes=5)) == []


def test_viewer_index_keeps_the_latest_view(queue_and_views, clock) -> None:
    _, views = queue_and_views
    now = clock()
    views.record_views(T, [("p", "ann", now - timedelta(days=20)), ("p", "bob", now),
                           ("p", "cat", now - timedelta(hours=1)), ("q", "ann", now)])
    views.record_views(T, [("p", "ann", now - timedelta(days=2)),
                           ("p", "bob", now - timedelta(days=30))])  # older: ignored
    views.record_views("other", [("p", "eve", now)])
    since = now - timedelta(days=7)
    assert views.viewers(T, "p", since, limit=10) == ["bob", "cat", "ann"]
    assert views.viewers(T, "p", since, limit=2) == ["bob", "cat"]
    assert views.viewers(T, "p", now - timedelta(hours=2), limit=10) == ["bob", "cat"]
    assert views.delete_user(T, "cat") == 1
    assert views.prune(now - timedelta(days=1)) == 1  # ann's view of p, two days ago
    assert views.viewers(T, "p", now - timedelta(days=90), limit=10) == ["bob"]
    assert not views.backfilled(T)
    views.mark_backfilled(T, now)
    assert views.backfilled(T) and not views.backfilled("other")


@pytest.fixture
def item_engine(stores) -> JourneyEngine:
    people = {u: User(user_id=u, profile={"email": f"{u}@example.com"}) for u in ("ann", "bob")}
    journeys = builtin_journeys()
    return JourneyEngine([journeys["price_drop"], journeys["back_in_stock"]], stores.runs,
                         stores.outbox, users=lambda t, u: people.get(u))


def test_each_journey_asks_for_viewers_of_its_own_window(item_engine, clock) -> None:
    asked: list[timedelta] = []

    def viewers(within: timedelta) -> list[str]:
        asked.append(within)
        return ["ann", "ghost"]

    small = ItemChange(T, "p", PRICE_DROPPED, clock(), old_price=100.0, new_price=96.0)
    assert item_engine.on_item_change(small, viewers, clock()) == []  # under 5 %
    assert asked == []
    big = ItemChange(T, "p", PRICE_DROPPED, clock(), old_price=100.0, new_price=50.0)
    [run] = item_engine.on_item_change(big, viewers, clock())
    assert (run.journey, run.user_id) == ("price_drop", "ann")
    assert run.context["event"]["drop_percent"] == 50.0
    assert asked == [timedelta(days=14)]
    restock = ItemChange(T, "p", BACK_IN_STOCK, clock())
    [run] = item_engine.on_item_change(restock, lambda within: ["bob"], clock())
    assert (run.journey, run.user_id) == ("back_in_stock", "bob")


def test_viewed_within_is_validated() -> None:
    document = {"trigger": {"item_update": "price_drop", "viewed_within": "3d"},
                "name": "drop", "steps": [{"type": "send", "id": "s", "template": "t"}]}
    assert parse_journey(document).trigger.viewed_within == timedelta(days=3)
    with pytest.raises(InvalidInput, match="viewed_within"):
        parse_journey({**document, "trigger": {"item_update": "price_drop",
                                               "viewed_within": "365d"}})
