"""The journey engine with a fake clock: triggers, waits, conditions, sends, exits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from personify.domain.errors import InvalidInput
from personify.domain.events import Event
from personify.domain.items import Item
from personify.domain.users import User
from personify.messaging.campaigns import Campaign, schedule_campaign
from personify.messaging.journey_definitions import builtin_journeys, load_journey, parse_journey
from personify.messaging.journeys import JourneyEngine
from personify.messaging.records import RunStatus

T = "shop"


def _event(kind: str, user: str, at: datetime, item: str | None = "sku1", n: int = 0) -> Event:
    return Event(
        event_id=f"{kind}-{user}-{at.timestamp()}-{n}",
        type=kind,
        user_id=user,
        item_id=item,
        timestamp=at,
    )


@pytest.fixture
def people() -> dict[str, User]:
    return {
        "ann": User(
            user_id="ann",
            profile={
                "name": "Ann",
                "country": "DE",
                "birthday": "03-02",
                "time_zone": "Europe/Berlin",
            },
        ),
        "bob": User(user_id="bob", profile={"name": "Bob", "country": "FR"}),
    }


@pytest.fixture
def consent() -> set[str]:
    return {"ann", "bob"}


@pytest.fixture
def engine(stores, people, consent):
    journeys = builtin_journeys()
    return JourneyEngine(
        journeys=list(journeys.values()),
        runs=stores.runs,
        outbox=stores.outbox,
        users=lambda tenant, uid: people.get(uid),
        consent=lambda tenant, uid, purpose: uid in consent,
        suppressions=stores.suppressions,
        send_time=lambda user, now, within: now + timedelta(hours=1),
    )


def _queued(stores) -> int:
    return stores.outbox.counts().get("queued", 0)


def test_builtin_journeys_all_load() -> None:
    names = set(builtin_journeys())
    assert {
        "abandoned_cart",
        "abandoned_browse",
        "price_drop",
        "back_in_stock",
        "win_back",
        "welcome_series",
        "birthday",
        "entered_segment_vip",
    } <= names


def test_abandoned_cart_waits_then_sends_with_discount(engine, stores, clock) -> None:
    [run] = engine.handle_event(T, _event("add_to_cart", "ann", clock()), clock())
    assert run.journey == "abandoned_cart" and _queued(stores) == 0
    engine.handle_event(T, _event("add_to_cart", "ann", clock(), item="sku2"), clock())
    clock.advance(timedelta(hours=3, minutes=59))
    assert engine.tick(T, clock()) == 0
    clock.advance(timedelta(minutes=1))
    engine.tick(T, clock())  # grace over -> best-time wait (fake: +1 h)
    assert _queued(stores) == 0
    clock.advance(timedelta(hours=1))
    engine.tick(T, clock())
    assert _queued(stores) == 1
    [message] = stores.outbox.claim("w", clock(), limit=5, lease=timedelta(seconds=5))
    assert message.template == "cart_reminder" and message.user_id == "ann"
    assert message.context["cart_item_ids"] == ["sku1", "sku2"]
    assert (
        message.context["discount"]["percent"] == 10
        and len(message.context["discount"]["code"]) == 8
    )
    assert stores.runs.latest(T, "abandoned_cart", "ann").status == RunStatus.COMPLETED


def test_purchase_ends_the_journey(engine, stores, clock) -> None:
    engine.handle_event(T, _event("add_to_cart", "ann", clock()), clock())
    clock.advance(timedelta(hours=1))
    engine.handle_event(T, _event("purchase", "ann", clock()), clock())
    run = stores.runs.latest(T, "abandoned_cart", "ann")
    assert run.status == RunStatus.EXITED and run.exit_reason == "goal:purchase"
    clock.advance(timedelta(days=1))
    engine.tick(T, clock())
    assert _queued(stores) == 0


def test_consent_withdrawal_stops_the_journey(engine, stores, clock, consent) -> None:
    engine.handle_event(T, _event("add_to_cart", "ann", clock()), clock())
    clock.advance(timedelta(hours=4))
    engine.tick(T, clock())  # grace over, now waiting for the best time
    assert stores.runs.latest(T, "abandoned_cart", "ann").status == RunStatus.ACTIVE
    consent.discard("ann")
    clock.advance(timedelta(hours=1))
    engine.tick(T, clock())
    run = stores.runs.latest(T, "abandoned_cart", "ann")
    assert run.status == RunStatus.EXITED and run.exit_reason == "consent_withdrawn"
    assert _queued(stores) == 0


def test_unsubscribe_stops_the_journey(engine, stores, clock) -> None:
    engine.handle_event(T, _event("add_to_cart", "ann", clock()), clock())
    stores.suppressions.suppress(T, "ann", "email", clock(), "one-click")
    for _ in range(2):
        clock.advance(timedelta(hours=4))
        engine.tick(T, clock())
    assert stores.runs.latest(T, "abandoned_cart", "ann").exit_reason == "unsubscribed"


def test_no_consent_no_entry_and_reentry_cooldown(engine, stores, clock, consent) -> None:
    consent.discard("bob")
    assert engine.handle_event(T, _event("add_to_cart", "bob", clock()), clock()) == []
    consent.add("bob")
    assert len(engine.handle_event(T, _event("add_to_cart", "bob", clock()), clock())) == 1
    # already active -> no second run
    assert engine.handle_event(T, _event("add_to_cart", "bob", clock(), n=1), clock()) == []
    engine.handle_event(T, _event("purchase", "bob", clock()), clock())
    clock.advance(timedelta(days=2))
    assert engine.handle_event(T, _event("add_to_cart", "bob", clock()), clock()) == []
    clock.advance(timedelta(days=1))
    assert len(engine.handle_event(T, _event("add_to_cart", "bob", clock()), clock())) == 1


def test_abandoned_browse_needs_three_views_of_one_item(stores, people, clock) -> None:
    history: list[Event] = []
    engine = JourneyEngine(
        [builtin_journeys()["abandoned_browse"]],
        stores.runs,
        stores.outbox,
        users=lambda t, u: people.get(u),
        history=lambda t, u: [e for e in history if e.user_id == u],
    )
    for n, item in enumerate(["a", "b", "a"]):
        e = _event("view", "ann", clock(), item=item, n=n)
        history.append(e)
        assert engine.handle_event(T, e, clock()) == []
    third = _event("view", "ann", clock(), item="a", n=9)
    history.append(third)
    assert len(engine.handle_event(T, third, clock())) == 1


def test_price_drop_and_back_in_stock_for_viewers(engine, stores, clock) -> None:
    before = Item(item_id="p", title="Lamp", price=100.0, available=False)
    small = Item(item_id="p", title="Lamp", price=97.0, available=False)
    assert engine.on_item_update(T, before, small, ["ann"], clock()) == []  # < 5 % drop
    after = Item(item_id="p", title="Lamp", price=80.0, available=True)
    runs = engine.on_item_update(T, before, after, ["ann", "ghost"], clock())
    assert sorted(r.journey for r in runs) == ["back_in_stock", "price_drop"]
    price_run = next(r for r in runs if r.journey == "price_drop")
    assert price_run.context["event"]["drop_percent"] == 20.0
    assert _queued(stores) == 1  # back in stock sends at once (push); price drop waits


def test_birthday_and_win_back_scan(engine, stores, people, clock) -> None:
    last_seen = {"ann": clock() - timedelta(days=3), "bob": clock() - timedelta(days=31)}
    runs = engine.scan_users(T, people.values(), clock(), last_active=last_seen.get)
    assert sorted((r.journey, r.user_id) for r in runs) == [
        ("birthday", "ann"),
        ("win_back", "bob"),
    ]


def test_segment_entry(engine, clock) -> None:
    assert [r.journey for r in engine.on_segment_entered(T, "bob", "vip", clock())] == [
        "entered_segment_vip"
    ]
    assert engine.on_segment_entered(T, "bob", "other", clock()) == []


def test_journey_file_errors_name_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ntrigger: {event: view}\nsteps:\n  - {type: send, id: s, template: t}\n"
        "  - {type: wait, id: w, duration: soon}\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput) as info:
        load_journey(bad)
    assert info.value.field.startswith("steps.1")
    assert "bad.yaml" in info.value.message
    with pytest.raises(InvalidInput) as info:
        parse_journey(
            {
                "name": "x",
                "trigger": {"event": "v", "birthday": True},
                "steps": [{"type": "send", "id": "s", "template": "t"}],
            }
        )
    assert info.value.field == "trigger"
    with pytest.raises(InvalidInput, match="unknown step"):
        parse_journey(
            {
                "name": "x",
                "trigger": {"event": "v"},
                "steps": [{"type": "condition", "id": "c", "then": "nowhere"}],
            }
        )


def test_condition_loop_without_wait_is_stopped(stores, people, clock) -> None:
    journey = parse_journey(
        {
            "name": "loop",
            "trigger": {"event": "view"},
            "consent_purpose": None,
            "steps": [{"type": "condition", "id": "c", "then": "c"}],
        }
    )
    engine = JourneyEngine([journey], stores.runs, stores.outbox, users=lambda t, u: people.get(u))
    [run] = engine.handle_event(T, _event("view", "ann", clock()), clock())
    assert run.status == RunStatus.EXITED and "loop" in run.exit_reason


def test_campaign_audience_and_idempotency(stores, people, clock) -> None:
    campaign = Campaign(
        name="march",
        template="newsletter",
        send_at=clock() + timedelta(hours=2),
        audience=[{"field": "profile.country", "op": "in", "value": ["DE"]}],
    )
    assert schedule_campaign(stores.outbox, T, campaign, people.values(), now=clock()) == 1
    assert schedule_campaign(stores.outbox, T, campaign, people.values(), now=clock()) == 0
    assert stores.outbox.claim("w", clock(), limit=5, lease=timedelta(seconds=1)) == []
    [m] = stores.outbox.claim(
        "w", clock() + timedelta(hours=2), limit=5, lease=timedelta(seconds=1)
    )
    assert m.user_id == "ann" and m.context["campaign"] == "march"


def test_event_timestamps_are_independent_of_wall_clock(engine, clock) -> None:
    past = datetime(2020, 1, 1, tzinfo=UTC)
    assert len(engine.handle_event(T, _event("add_to_cart", "ann", past), clock())) == 1


def test_a_birthday_greets_once_per_day_however_often_the_scan_runs(
    stores, people, consent, clock
) -> None:
    """A birthday journey without a re-entry cooldown (re-entry right after exit), scanned again
    on the same day (a worker restart re-runs the daily scan), and a run store that forgot the
    first run: one greeting per person and birthday. Next year's birthday greets again."""
    journey = parse_journey({
        "name": "bday", "trigger": {"birthday": True},
        "steps": [{"type": "send", "id": "greeting", "template": "birthday"}],
    })
    from personify.messaging.state_stores import memory_state

    def engine(runs):
        return JourneyEngine(
            journeys=[journey], runs=runs, outbox=stores.outbox,
            users=lambda tenant, uid: people.get(uid),
            consent=lambda tenant, uid, purpose: uid in consent,
            suppressions=stores.suppressions,
        )

    first = engine(stores.runs)
    assert [r.user_id for r in first.scan_users(T, people.values(), clock())] == ["ann"]
    assert stores.runs.latest(T, "bday", "ann").status == RunStatus.COMPLETED
    clock.advance(timedelta(hours=2))
    first.scan_users(T, people.values(), clock())
    engine(memory_state().runs).scan_users(T, people.values(), clock())
    assert _queued(stores) == 1
    clock.advance(timedelta(days=365))
    first.scan_users(T, people.values(), clock())
    assert _queued(stores) == 2


def test_durations_accept_iso_8601_as_the_openapi_schema_says() -> None:
    journey = parse_journey({
        "name": "iso", "trigger": {"event": "view"}, "reentry": {"cooldown": "P3D"},
        "steps": [{"type": "wait", "id": "w", "duration": "PT4H30M"},
                  {"type": "send", "id": "s", "template": "t"}],
    })
    assert journey.reentry.cooldown == timedelta(days=3)
    assert journey.steps[0].duration == timedelta(hours=4, minutes=30)
    same = parse_journey({
        "name": "short", "trigger": {"event": "view"}, "reentry": {"cooldown": "3d"},
        "steps": [{"type": "send", "id": "s", "template": "t"}],
    })
    assert same.reentry.cooldown == journey.reentry.cooldown
    with pytest.raises(InvalidInput) as bad:
        parse_journey({"name": "bad", "trigger": {"event": "view"},
                       "reentry": {"cooldown": "three days"},
                       "steps": [{"type": "send", "id": "s", "template": "t"}]})
    assert "P1D" in bad.value.message or "P1D" in str(bad.value.accepted)


def test_condition_steps_read_the_persons_insights(stores, people, clock) -> None:
    journey = parse_journey(
        {
            "name": "care",
            "trigger": {"event": "view"},
            "consent_purpose": None,
            "steps": [
                {"type": "condition", "id": "risky", "then": "next", "else": "exit",
                 "all": [{"field": "insights.churn_risk", "op": "gt", "value": 0.7},
                         {"field": "insights.segments", "op": "contains", "value": "vip"}]},
                {"type": "send", "id": "keep", "template": "newsletter", "transactional": True},
            ],
        }
    )
    asked: list[str] = []
    known = {"ann": {"churn_risk": 0.9, "segments": ["vip"]},
             "bob": {"churn_risk": 0.9, "segments": []}}

    def insights(tenant: str, user_id: str) -> dict[str, object]:
        asked.append(user_id)
        return known[user_id]

    engine = JourneyEngine([journey], stores.runs, stores.outbox,
                           users=lambda t, u: people.get(u), insights=insights)
    [ann] = engine.handle_event(T, _event("view", "ann", clock()), clock())
    [bob] = engine.handle_event(T, _event("view", "bob", clock(), n=1), clock())
    assert ann.status == RunStatus.COMPLETED and _queued(stores) == 1
    assert bob.status == RunStatus.EXITED and bob.exit_reason == "condition"
    assert asked == ["ann", "bob"]
