"""Contract tests every storage adapter must pass (pytest classes; subclass them to run).

A test module provides two fixtures and subclasses the contracts::

    @pytest.fixture(params=["memory://", ...])
    def stores_url(request) -> str: ...        # a fresh, empty database per test

    @pytest.fixture
    def stores(stores_url) -> Iterator[Stores]: ...   # open_stores(stores_url), closed after

    class TestEvents(EventStoreContract): ...

Data is deliberately hostile: Cyrillic, emoji, quotes and SQL-looking strings everywhere.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.errors import ConfigurationError, InvalidInput, NotFound
from personify.domain.events import Context, Event
from personify.domain.items import Item, ItemPatch
from personify.domain.keys import Scope
from personify.domain.users import Profile, User, UserPatch
from personify.storage.registry import Stores, open_stores

A, B = "tenant-a", "tenant-b"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SQLISH = "Robert'); DROP TABLE personify_events;-- %_\\"
"""A string that breaks naive SQL quoting and LIKE patterns."""
CYRILLIC = "Ёжик в тумане"
EMOJI = "🍵🚀👩‍💻"


def event(event_id: str, *, at: int = 0, **fields: Any) -> Event:
    """An event ``at`` seconds after T0; user ``u1`` unless ``fields`` say otherwise."""
    values: dict[str, Any] = {"type": "view", "item_id": "i1", "user_id": "u1"}
    values.update(fields)
    return Event(event_id=event_id, timestamp=T0 + timedelta(seconds=at), **values)


def rich_event(event_id: str) -> Event:
    """An event with every field set, to check lossless round trips."""
    return Event(
        event_id=event_id,
        type="purchase",
        user_id=f"user-{CYRILLIC}",
        anonymous_id=f"anon-{EMOJI}",
        item_id=SQLISH,
        item_ids=["a", "б", EMOJI],
        value=4.5,
        quantity=3.0,
        price=0.1,
        currency="RUB",
        order_id="order-'1'",
        query=f"{CYRILLIC} {SQLISH}",
        timestamp=datetime(2024, 3, 1, 15, 30, 0, 123456, tzinfo=timezone(timedelta(hours=3))),
        context=Context.model_validate(
            {
                "device": "mobile",
                "channel": "web",
                "page": "/каталог?q=1",
                "location": {
                    "country": "RU",
                    "city": "Москва",
                    "latitude": 55.75,
                    "longitude": 37.6,
                },
                "locale": "ru-RU",
                "local_time": datetime(2024, 3, 1, 15, 30, tzinfo=timezone(timedelta(hours=3))),
                "extra": {"weather": "снег ❄", "temp": -3, "none": None},
            }
        ),
        recommendation_id="rec-1",
        properties={"color": "красный", "sizes": [1, 2.5, "XL", True], "missing": None},
    )


def _without_received(value: Event) -> dict[str, Any]:
    return value.model_dump(exclude={"received_at"})


def _needs_reopenable(stores: Stores) -> None:
    if stores.engine_url.startswith("memory://"):
        pytest.skip("memory:// databases live and die with one engine; nothing to reopen")


class EventStoreContract:
    """:class:`~personify.storage.ports.EventStore`."""

    def test_round_trip_is_lossless(self, stores: Stores) -> None:
        original = rich_event("ev-1")
        result = stores.events.append(A, [original])
        assert result.stored == ["ev-1"] and result.duplicates == []
        loaded = stores.events.get(A, "ev-1")
        assert loaded is not None
        assert _without_received(loaded) == _without_received(original)
        assert loaded.timestamp == original.timestamp
        assert loaded.received_at is not None and loaded.received_at.tzinfo is not None
        assert abs(loaded.received_at - datetime.now(UTC)) < timedelta(minutes=5)

    def test_client_received_at_is_kept(self, stores: Stores) -> None:
        received = datetime(2024, 3, 2, tzinfo=UTC)
        stores.events.append(A, [event("e1", received_at=received)])
        loaded = stores.events.get(A, "e1")
        assert loaded is not None and loaded.received_at == received

    def test_duplicates_within_a_batch_first_occurrence_wins(self, stores: Stores) -> None:
        batch = [event("e1", value=1.0), event("e2"), event("e1", value=2.0), event("e1")]
        result = stores.events.append(A, batch)
        assert result.stored == ["e1", "e2"]
        assert result.duplicates == ["e1", "e1"]
        stored = stores.events.get(A, "e1")
        assert stored is not None and stored.value == 1.0
        assert stores.events.count(A) == 2

    def test_duplicates_across_calls_are_acknowledged_not_stored(self, stores: Stores) -> None:
        stores.events.append(A, [event("e1", value=1.0), event("e2")])
        result = stores.events.append(A, [event("e3"), event("e1", value=9.0), event("e2")])
        assert result.stored == ["e3"]
        assert result.duplicates == ["e1", "e2"]
        assert stores.events.count(A) == 3
        stored = stores.events.get(A, "e1")
        assert stored is not None and stored.value == 1.0

    def test_empty_batch(self, stores: Stores) -> None:
        result = stores.events.append(A, [])
        assert result.stored == [] and result.duplicates == []

    def test_large_batch_in_one_call(self, stores: Stores) -> None:
        batch = [event(f"e{i}", at=i % 500, user_id=f"u{i % 97}") for i in range(10_000)]
        result = stores.events.append(A, batch)
        assert len(result.stored) == 10_000
        again = stores.events.append(A, [*batch[:100], event("new")])
        assert again.stored == ["new"] and len(again.duplicates) == 100
        assert stores.events.count(A) == 10_001

    def test_concurrent_writers_store_each_id_once(self, stores: Stores) -> None:
        batches = [[event(f"e{i}") for i in range(k, k + 600)] for k in (0, 300, 150)]
        results: list[Any] = []

        def write(batch: list[Event]) -> None:
            results.append(stores.events.append(A, batch))

        threads = [threading.Thread(target=write, args=(batch,)) for batch in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stored = [event_id for result in results for event_id in result.stored]
        assert sorted(stored) == sorted({f"e{i}" for i in range(900)})
        assert sum(len(r.stored) + len(r.duplicates) for r in results) == 1800
        assert stores.events.count(A) == 900

    def test_sql_looking_ids_and_texts(self, stores: Stores) -> None:
        stores.events.append(A, [event(SQLISH, user_id=SQLISH, item_id=SQLISH, query=SQLISH)])
        loaded = stores.events.get(A, SQLISH)
        assert loaded is not None and loaded.query == SQLISH
        assert [e.event_id for e in stores.events.for_user(A, SQLISH)] == [SQLISH]
        assert stores.events.get(A, "%") is None

    def test_for_user_newest_first_with_limit_before_and_types(self, stores: Stores) -> None:
        stores.events.append(
            A,
            [
                event("old", at=0),
                event("mid", at=10, type="click"),
                event("new", at=20),
                event("other", at=30, user_id="u2"),
            ],
        )
        ids = [e.event_id for e in stores.events.for_user(A, "u1")]
        assert ids == ["new", "mid", "old"]
        assert [e.event_id for e in stores.events.for_user(A, "u1", limit=2)] == ["new", "mid"]
        before = T0 + timedelta(seconds=15)
        assert [e.event_id for e in stores.events.for_user(A, "u1", before=before)] == [
            "mid",
            "old",
        ]
        assert [e.event_id for e in stores.events.for_user(A, "u1", types=["click"])] == ["mid"]
        assert stores.events.for_user(A, "nobody") == []

    def test_recent_for_users_is_for_user_per_person(self, stores: Stores) -> None:
        stores.users.upsert(A, [User(user_id="u1", anonymous_ids=["anon-1"])])
        stores.users.upsert(B, [User(user_id="u2", anonymous_ids=["anon-2"])])
        batch = [
            # same-second ties (ordered by insertion), both types, a linked anonymous id,
            # SQL-looking and Cyrillic ids
            event(f"e{i}", at=i // 3, type="view" if i % 4 else "click", user_id=person)
            for i, person in enumerate(["u1", "u2", SQLISH, CYRILLIC] * 12)
        ]
        batch += [
            event("anon-a", at=5, user_id=None, anonymous_id="anon-1"),
            event("anon-b", at=50, user_id=None, anonymous_id="anon-1"),
            event("stray", at=6, user_id=None, anonymous_id="anon-9"),
            event("both-ids", at=7, user_id="u2", anonymous_id="anon-1"),
        ]
        stores.events.append(A, batch)
        # another tenant: same people, same anonymous id, more recent events
        stores.events.append(
            B,
            [
                event("b-u1", at=99, user_id="u1"),
                event("b-anon", at=99, user_id=None, anonymous_id="anon-1"),
                event("b-u2", at=99, user_id=None, anonymous_id="anon-2"),
            ],
        )
        people = ["u1", "u2", SQLISH, CYRILLIC, "nobody", "anon-1"]
        for limit in (1, 5, 100):
            for types in (None, ["view"], ["click", "view"], []):
                found = stores.events.recent_for_users(
                    A, [*people, "u1"], types=types, limit_per_user=limit
                )
                assert list(found) == people, "every asked id once, in the order asked"
                for person in people:
                    expected = stores.events.for_user(A, person, limit=limit, types=types)
                    assert [e.event_id for e in found[person]] == [
                        e.event_id for e in expected
                    ], (person, limit, types)
                    assert found[person] == expected
        everything = stores.events.recent_for_users(A, people)
        assert [e.event_id for e in everything["u1"]][:2] == ["anon-b", "e44"]
        assert "anon-a" in {e.event_id for e in everything["u1"]}
        assert not {"stray", "b-u1", "b-anon"} & {e.event_id for e in everything["u1"]}
        assert "both-ids" in {e.event_id for e in everything["u2"]}
        assert everything["nobody"] == [] and everything["anon-1"] == []
        in_b = stores.events.recent_for_users(B, ["u1", "u2", SQLISH])
        assert {p: [e.event_id for e in v] for p, v in in_b.items()} == {
            "u1": ["b-u1"],
            "u2": ["b-u2"],
            SQLISH: [],
        }
        since = T0 + timedelta(seconds=8)
        recent = stores.events.recent_for_users(A, people, since=since, limit_per_user=3)
        for person in people:
            expected = [e for e in stores.events.for_user(A, person) if e.timestamp >= since]
            assert recent[person] == expected[:3]
        assert stores.events.recent_for_users(A, []) == {}
        assert stores.events.recent_for_users(A, ["u1"], limit_per_user=0) == {"u1": []}
        with pytest.raises(InvalidInput) as error:
            stores.events.recent_for_users(A, ["u1"], limit_per_user=-1)
        assert error.value.field == "limit_per_user"

    def test_recent_for_users_in_chunks(self, stores: Stores) -> None:
        people = [f"p{i}" for i in range(1_234)]
        stores.events.append(
            A, [event(f"{p}-{k}", at=k, user_id=p) for p in people for k in range(2)]
        )
        found = stores.events.recent_for_users(A, people, limit_per_user=1)
        assert len(found) == len(people)
        assert all([e.event_id for e in found[p]] == [f"{p}-1"] for p in people)

    def test_for_anonymous(self, stores: Stores) -> None:
        stores.events.append(
            A,
            [
                event("a1", at=1, user_id=None, anonymous_id="anon-1"),
                event("a2", at=2, user_id=None, anonymous_id="anon-1"),
                event("a3", at=3, user_id=None, anonymous_id="anon-2"),
            ],
        )
        assert [e.event_id for e in stores.events.for_anonymous(A, "anon-1")] == ["a2", "a1"]
        assert [e.event_id for e in stores.events.for_anonymous(A, "anon-1", limit=1)] == ["a2"]

    def test_link_anonymous_attributes_past_events(self, stores: Stores) -> None:
        stores.events.append(
            A,
            [
                event("a1", at=1, user_id=None, anonymous_id="anon-1"),
                event("a2", at=2, user_id=None, anonymous_id="anon-1"),
                event("u1", at=3, user_id="u1"),
                event("x", at=4, user_id=None, anonymous_id="anon-2"),
            ],
        )
        assert [e.event_id for e in stores.events.for_user(A, "u1")] == ["u1"]
        assert stores.events.link_anonymous(A, "anon-1", "u1") == 2
        linked = stores.events.for_user(A, "u1")
        assert [e.event_id for e in linked] == ["u1", "a2", "a1"]
        assert all(e.user_id == "u1" for e in linked)
        stored = stores.events.get(A, "a1")
        assert stored is not None and stored.user_id == "u1" and stored.anonymous_id == "anon-1"
        assert stores.events.link_anonymous(A, "anon-1", "u1") == 0

    def test_for_user_includes_events_of_anonymous_ids_linked_in_the_profile(
        self, stores: Stores
    ) -> None:
        stores.users.upsert(A, [User(user_id="u1", anonymous_ids=["anon-1"])])
        stores.events.append(
            A,
            [
                event("a1", at=1, user_id=None, anonymous_id="anon-1"),
                event("u1", at=2),
                event("other", at=3, user_id=None, anonymous_id="anon-9"),
            ],
        )
        assert [e.event_id for e in stores.events.for_user(A, "u1")] == ["u1", "a1"]

    def test_scan_in_time_order_across_pages(self, stores: Stores) -> None:
        # out of order on purpose, with ties on the timestamp
        batch = [
            event(f"e{i}", at=(i * 7) % 10, type="view" if i % 2 else "click") for i in range(25)
        ]
        stores.events.append(A, batch)
        scanned = list(stores.events.scan(A, batch_size=4))
        assert len(scanned) == 25
        keys = [(e.timestamp, int(e.event_id[1:])) for e in scanned]
        assert keys == sorted(keys), "ordered by timestamp, then by insertion"
        since, until = T0 + timedelta(seconds=3), T0 + timedelta(seconds=6)
        window = list(stores.events.scan(A, since=since, until=until, batch_size=2))
        expected = {e.event_id for e in batch if since <= e.timestamp < until}
        assert {e.event_id for e in window} == expected and len(window) == len(expected)
        clicks = list(stores.events.scan(A, types=["click"], batch_size=3))
        assert {e.event_id for e in clicks} == {e.event_id for e in batch if e.type == "click"}

    def test_delete_user_erases_their_and_their_anonymous_events(self, stores: Stores) -> None:
        stores.users.upsert(A, [User(user_id="u1", anonymous_ids=["anon-linked"])])
        stores.events.append(
            A,
            [
                event("e1"),
                event("e2", user_id=None, anonymous_id="anon-given"),
                event("e3", user_id=None, anonymous_id="anon-linked"),
                event("keep", user_id="u2"),
            ],
        )
        assert stores.events.delete_user(A, "u1", ["anon-given"]) == 3
        assert stores.events.count(A) == 1
        assert stores.events.get(A, "keep") is not None

    def test_delete_older_than_one_type(self, stores: Stores) -> None:
        stores.events.append(
            A,
            [event("v-old", at=0), event("v-new", at=100), event("c-old", at=0, type="click")],
        )
        assert stores.events.delete_older_than(A, "view", T0 + timedelta(seconds=50)) == 1
        assert stores.events.get(A, "v-old") is None
        assert stores.events.get(A, "v-new") is not None
        assert stores.events.get(A, "c-old") is not None

    def test_tenant_isolation(self, stores: Stores) -> None:
        events = stores.events
        events.append(A, [event("e1", value=1.0), event("an", user_id=None, anonymous_id="x")])
        result = events.append(
            B, [event("e1", value=2.0), event("an", user_id=None, anonymous_id="x")]
        )
        assert result.stored == ["e1", "an"], "the same event id is independent per tenant"
        stored_b = events.get(B, "e1")
        assert stored_b is not None and stored_b.value == 2.0
        assert events.get("tenant-c", "e1") is None
        assert [e.event_id for e in events.for_user(B, "u1")] == ["e1"]
        assert events.link_anonymous(A, "x", "u1") == 1
        assert events.for_anonymous(B, "x")[0].user_id is None
        assert events.delete_user(A, "u1") == 2
        assert events.count(A) == 0 and events.count(B) == 2
        assert events.delete_older_than(A, "view", T0 + timedelta(days=1)) == 0
        assert [e.event_id for e in events.scan(B)] == ["e1", "an"]
        assert events.delete_older_than(B, "view", T0 + timedelta(days=1)) == 2
        assert list(events.scan(A)) == []


def full_user(user_id: str) -> User:
    return User(
        user_id=user_id,
        anonymous_ids=["anon-" + user_id],
        profile=Profile.model_validate(
            {
                "name": f"Иван {EMOJI}",
                "email": "Ivan.Petrov@Пример.рф",
                "country": "RU",
                "city": "Санкт-Петербург",
                "time_zone": "Europe/Moscow",
                "language": "ru",
                "birth_year": 1990,
                "birthday": "1990-05-17",
                "gender": "male",
                "profession": SQLISH,
                "industry": "ИТ",
                "experience_years": 7.5,
                "skills": ["Python", "SQL", "Управление"],
                "interests": ["шахматы"],
                "goals": ["лидерство"],
                "bio": CYRILLIC * 10,
            }
        ),
        properties={"tier": "золото", "score": 3.5, "flags": [True, 1], "empty": None},
        restricted=True,
    )


class UserStoreContract:
    """:class:`~personify.storage.ports.UserStore`."""

    def test_round_trip(self, stores: Stores) -> None:
        original = full_user("u-Ёж")
        [stored] = stores.users.upsert(A, [original])
        loaded = stores.users.get(A, "u-Ёж")
        assert loaded == stored
        assert loaded.model_dump(exclude={"created_at", "updated_at"}) == original.model_dump(
            exclude={"created_at", "updated_at"}
        )
        assert loaded.created_at is not None and loaded.created_at.tzinfo is not None
        assert stores.users.get(A, "missing") is None

    def test_upsert_replaces_profile_keeps_created_and_adds_anonymous_ids(
        self, stores: Stores
    ) -> None:
        [first] = stores.users.upsert(A, [full_user("u1")])
        [second] = stores.users.upsert(
            A,
            [
                User(
                    user_id="u1",
                    anonymous_ids=["anon-2"],
                    profile=Profile.model_validate({"name": "Пётр"}),
                )
            ],
        )
        assert second.created_at == first.created_at
        assert second.updated_at is not None and first.updated_at is not None
        assert second.updated_at >= first.updated_at
        assert second.profile.name == "Пётр" and second.profile.email is None
        assert second.properties == {}
        assert set(second.anonymous_ids) == {"anon-u1", "anon-2"}
        assert stores.users.get(A, "u1") == second

    def test_get_by_anonymous_and_an_id_moving_to_another_user(self, stores: Stores) -> None:
        stores.users.upsert(A, [User(user_id="u1", anonymous_ids=["dev-1", "dev-2"])])
        found = stores.users.get_by_anonymous(A, "dev-2")
        assert found is not None and found.user_id == "u1"
        assert stores.users.get_by_anonymous(A, "unknown") is None
        stores.users.upsert(A, [User(user_id="u2", anonymous_ids=["dev-2"])])
        moved = stores.users.get_by_anonymous(A, "dev-2")
        assert moved is not None and moved.user_id == "u2"
        still = stores.users.get(A, "u1")
        assert still is not None and still.anonymous_ids == ["dev-1"]

    def test_patch_merges_profile_fields_one_by_one(self, stores: Stores) -> None:
        stores.users.upsert(A, [full_user("u1")])
        patched = stores.users.patch(
            A,
            "u1",
            UserPatch(
                profile={"city": "Казань", "skills": ["Go"]},
                properties={"score": 4, "new": "да"},
                anonymous_ids=["anon-new"],
            ),
        )
        assert patched.profile.city == "Казань" and patched.profile.skills == ["Go"]
        assert patched.profile.name == f"Иван {EMOJI}" and patched.profile.birth_year == 1990
        assert patched.properties["score"] == 4 and patched.properties["tier"] == "золото"
        assert patched.properties["new"] == "да"
        assert set(patched.anonymous_ids) == {"anon-u1", "anon-new"}
        assert stores.users.get(A, "u1") == patched
        unrestricted = stores.users.patch(A, "u1", UserPatch(restricted=False))
        assert unrestricted.restricted is False and unrestricted.profile.city == "Казань"

    def test_patch_errors_name_the_field(self, stores: Stores) -> None:
        stores.users.upsert(A, [User(user_id="u1")])
        with pytest.raises(InvalidInput) as caught:
            stores.users.patch(A, "u1", UserPatch(profile={"birth_year": 1066}))
        assert caught.value.field == "profile.birth_year"
        with pytest.raises(InvalidInput) as caught:
            stores.users.patch(A, "u1", UserPatch(profile={"shoe_size": 44}))
        assert caught.value.field == "profile.shoe_size"
        with pytest.raises(NotFound):
            stores.users.patch(A, "ghost", UserPatch(restricted=True))
        loaded = stores.users.get(A, "u1")
        assert loaded is not None and loaded.profile.birth_year is None

    def test_list_searches_id_name_email_case_insensitively(self, stores: Stores) -> None:
        stores.users.upsert(
            A,
            [
                User(
                    user_id="u1",
                    profile=Profile.model_validate({"name": "ИВАН Петров", "email": "ivan@x.org"}),
                ),
                User(
                    user_id="u2",
                    profile=Profile.model_validate({"name": "Мария", "email": "MARIA@Пример.рф"}),
                ),
                User(
                    user_id="Ёлка-3", profile=Profile.model_validate({"name": "100% Percent_User"})
                ),
            ],
        )
        names = lambda q: [u.user_id for u in stores.users.list(A, query=q)]  # noqa: E731
        assert names("иван") == ["u1"]
        assert names("ПЕТР") == ["u1"]
        assert names("maria@пример") == ["u2"]
        assert names("ёлка") == ["Ёлка-3"]
        assert names("100%") == ["Ёлка-3"]
        assert names("%") == ["Ёлка-3"], "LIKE wildcards are literal"
        assert names("t_u") == ["Ёлка-3"]
        assert names("_") == ["Ёлка-3"]
        assert names(SQLISH) == []
        assert [u.user_id for u in stores.users.list(A)] == sorted(["u1", "u2", "Ёлка-3"])
        assert [u.user_id for u in stores.users.list(A, limit=1, offset=1)] == [
            sorted(["u1", "u2", "Ёлка-3"])[1]
        ]

    def test_count_delete_and_tenant_isolation(self, stores: Stores) -> None:
        stores.users.upsert(A, [full_user("u1"), User(user_id="u2")])
        stores.users.upsert(
            B, [User(user_id="u1", profile=Profile.model_validate({"name": "Другой"}))]
        )
        assert stores.users.count(A) == 2 and stores.users.count(B) == 1
        b_user = stores.users.get(B, "u1")
        assert b_user is not None and b_user.profile.name == "Другой"
        assert stores.users.get_by_anonymous(B, "anon-u1") is None
        assert [u.user_id for u in stores.users.list(B, query="иван")] == []
        with pytest.raises(NotFound):
            stores.users.patch(B, "u2", UserPatch(restricted=True))
        assert stores.users.delete(A, "u1") is True
        assert stores.users.delete(A, "u1") is False
        assert stores.users.get(A, "u1") is None
        assert stores.users.get_by_anonymous(A, "anon-u1") is None
        assert stores.users.get(B, "u1") is not None and stores.users.count(B) == 1


def full_item(item_id: str, **fields: Any) -> Item:
    values: dict[str, Any] = {
        "type": "content",
        "title": f"Статья {EMOJI} {SQLISH}",
        "description": CYRILLIC * 50,
        "categories": ["Новости", "tech"],
        "tags": ["🔥", "b"],
        "price": 19.99,
        "currency": "EUR",
        "available": False,
        "hidden": True,
        "author_id": "автор-1",
        "created_at": datetime(2023, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "expires_at": datetime(2030, 1, 1, tzinfo=UTC),
        "properties": {"pages": 12, "ratio": 0.25, "langs": ["ru", "en"], "nothing": None},
    }
    values.update(fields)
    return Item(item_id=item_id, **values)


class CatalogStoreContract:
    """:class:`~personify.storage.ports.CatalogStore`."""

    def test_round_trip_every_field(self, stores: Stores) -> None:
        original = full_item("i-Ж")
        [stored] = stores.catalog.upsert(A, [original])
        loaded = stores.catalog.get(A, "i-Ж")
        assert loaded == stored
        assert loaded.model_dump(exclude={"updated_at"}) == original.model_dump(
            exclude={"updated_at"}
        )
        assert loaded.updated_at is not None and loaded.updated_at.tzinfo is not None
        assert stores.catalog.get(A, "missing") is None

    def test_datetimes_come_back_as_utc(self, stores: Stores) -> None:
        moscow = timezone(timedelta(hours=3))
        stores.catalog.upsert(
            A, [Item(item_id="i1", created_at=datetime(2024, 1, 1, 3, tzinfo=moscow))]
        )
        loaded = stores.catalog.get(A, "i1")
        assert loaded is not None and loaded.created_at == datetime(2024, 1, 1, tzinfo=UTC)
        assert loaded.created_at.utcoffset() == timedelta(0)

    def test_upsert_replaces_and_keeps_created_at(self, stores: Stores) -> None:
        [first] = stores.catalog.upsert(A, [Item(item_id="i1", title="один")])
        assert first.created_at is not None
        [second] = stores.catalog.upsert(A, [Item(item_id="i1", title="два", price=5)])
        assert second.created_at == first.created_at and second.title == "два"
        loaded = stores.catalog.get(A, "i1")
        assert loaded == second and stores.catalog.count(A) == 1

    def test_patch_changes_only_given_fields(self, stores: Stores) -> None:
        stores.catalog.upsert(A, [full_item("i1")])
        patched = stores.catalog.patch(
            A, "i1", ItemPatch(title="Новое", price=None, properties={"pages": 13, "x": "y"})
        )
        assert patched.title == "Новое" and patched.price is None
        assert patched.description == CYRILLIC * 50 and patched.hidden is True
        assert patched.properties["pages"] == 13 and patched.properties["ratio"] == 0.25
        assert patched.properties["x"] == "y"
        assert stores.catalog.get(A, "i1") == patched
        with pytest.raises(NotFound):
            stores.catalog.patch(A, "ghost", ItemPatch(title="x"))
        with pytest.raises(NotFound):
            stores.catalog.patch(B, "i1", ItemPatch(title="x"))

    def test_patch_errors_name_the_field(self, stores: Stores) -> None:
        stores.catalog.upsert(A, [Item(item_id="i1")])
        with pytest.raises(InvalidInput) as caught:
            stores.catalog.patch(A, "i1", ItemPatch(type=None))
        assert caught.value.field == "type"

    def test_get_many_list_and_scan(self, stores: Stores) -> None:
        stores.catalog.upsert(
            A,
            [Item(item_id=f"p{i:02d}", type="product", title=f"Чайник {i}") for i in range(12)]
            + [Item(item_id="c1", type="content", title="Как заварить ЧАЙ")],
        )
        many = stores.catalog.get_many(A, ["p01", "c1", "nope", "p01"])
        assert set(many) == {"p01", "c1"} and many["c1"].title == "Как заварить ЧАЙ"
        assert len(stores.catalog.list(A, type="product", limit=100)) == 12
        assert [i.item_id for i in stores.catalog.list(A, type="content")] == ["c1"]
        assert [i.item_id for i in stores.catalog.list(A, query="ЗАВАРИТЬ")] == ["c1"]
        assert len(stores.catalog.list(A, query="чай", limit=100)) == 13
        assert len(stores.catalog.list(A, query="ЧАЙНИК", limit=5)) == 5
        assert [i.item_id for i in stores.catalog.list(A, query="%")] == []
        paged = stores.catalog.list(A, type="product", limit=3, offset=3)
        assert [i.item_id for i in paged] == ["p03", "p04", "p05"]
        scanned = [i.item_id for i in stores.catalog.scan(A, batch_size=5)]
        assert scanned == sorted(["c1", *(f"p{i:02d}" for i in range(12))])

    def test_delete_and_tenant_isolation(self, stores: Stores) -> None:
        stores.catalog.upsert(A, [full_item("i1"), Item(item_id="i2")])
        stores.catalog.upsert(B, [Item(item_id="i1", title="B")])
        b_item = stores.catalog.get(B, "i1")
        assert b_item is not None and b_item.title == "B"
        assert set(stores.catalog.get_many(B, ["i1", "i2"])) == {"i1"}
        assert [i.item_id for i in stores.catalog.list(B)] == ["i1"]
        assert [i.item_id for i in stores.catalog.scan(B)] == ["i1"]
        assert stores.catalog.count(A) == 2 and stores.catalog.count(B) == 1
        assert stores.catalog.delete(B, "i2") is False
        assert stores.catalog.delete(A, "i1") is True
        assert stores.catalog.get(A, "i1") is None and stores.catalog.get(B, "i1") is not None


def consent(user_id: str, purpose: str, state: str, *, at: int, **fields: Any) -> ConsentRecord:
    return ConsentRecord(
        user_id=user_id,
        purpose=purpose,
        state=ConsentState(state),
        recorded_at=T0 + timedelta(days=at),
        **fields,
    )


class ConsentStoreContract:
    """:class:`~personify.storage.ports.ConsentStore`."""

    def test_append_assigns_ids_and_history_is_ordered(self, stores: Stores) -> None:
        first = stores.consents.append(
            A, consent("u1", "email_marketing", "granted", at=0, source="форма", text_version="v1")
        )
        second = stores.consents.append(A, consent("u1", "email_marketing", "withdrawn", at=1))
        unstamped = stores.consents.append(
            A, ConsentRecord(user_id="u1", purpose="profiling", state=ConsentState.DENIED)
        )
        assert first.record_id is not None and second.record_id is not None
        assert first.record_id != second.record_id
        assert unstamped.recorded_at is not None and unstamped.recorded_at.tzinfo is not None
        history = stores.consents.history(A, "u1")
        assert history == [first, second, unstamped]
        assert history[0].source == "форма" and history[0].text_version == "v1"

    def test_current_is_latest_per_purpose_unless_expired(self, stores: Stores) -> None:
        consents = stores.consents
        consents.append(A, consent("u1", "personalization", "granted", at=0))
        consents.append(A, consent("u1", "email_marketing", "granted", at=0))
        consents.append(A, consent("u1", "email_marketing", "withdrawn", at=2))
        consents.append(
            A,
            consent("u1", "profiling", "granted", at=1, expires_at=T0 + timedelta(days=10)),
        )
        now = T0 + timedelta(days=5)
        current = consents.current(A, "u1", now=now)
        assert {p: r.state.value for p, r in current.items()} == {
            "personalization": "granted",
            "email_marketing": "withdrawn",
            "profiling": "granted",
        }
        later = consents.current(A, "u1", now=T0 + timedelta(days=11))
        assert "profiling" not in later, "an expired grant is not consent"
        earlier = consents.current(A, "u1", now=T0 + timedelta(days=1))
        assert earlier["email_marketing"].state is ConsentState.GRANTED

    def test_expired_latest_does_not_fall_back_to_an_older_grant(self, stores: Stores) -> None:
        stores.consents.append(A, consent("u1", "profiling", "granted", at=0))
        stores.consents.append(
            A, consent("u1", "profiling", "granted", at=1, expires_at=T0 + timedelta(days=2))
        )
        assert stores.consents.current(A, "u1", now=T0 + timedelta(days=3)) == {}

    def test_delete_user_and_tenant_isolation(self, stores: Stores) -> None:
        stores.consents.append(A, consent("u1", "profiling", "granted", at=0))
        stores.consents.append(A, consent("u1", "personalization", "granted", at=0))
        stores.consents.append(B, consent("u1", "profiling", "denied", at=0))
        assert stores.consents.current(B, "u1", now=T0)["profiling"].state is ConsentState.DENIED
        assert len(stores.consents.history(B, "u1")) == 1
        assert stores.consents.delete_user(A, "u1") == 2
        assert stores.consents.history(A, "u1") == []
        assert len(stores.consents.history(B, "u1")) == 1


class KeyStoreContract:
    """:class:`~personify.storage.ports.KeyStore`."""

    def test_create_and_verify(self, stores: Stores) -> None:
        key, secret = stores.keys.create(A, "сайт 🚀", [Scope.INGEST, Scope.SERVE])
        assert secret.startswith(f"pfy_{key.key_id}_") and len(secret) > 40
        verified = stores.keys.verify(secret)
        assert verified is not None
        assert verified.key_id == key.key_id and verified.tenant == A
        assert verified.scopes == frozenset({Scope.INGEST, Scope.SERVE})
        assert verified.name == "сайт 🚀" and verified.created_at.tzinfo is not None

    def test_wrong_and_malformed_secrets_fail(self, stores: Stores) -> None:
        key, secret = stores.keys.create(A, "k", [Scope.ADMIN])
        assert stores.keys.verify(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
        assert stores.keys.verify(f"pfy_{key.key_id}_") is None
        assert stores.keys.verify("pfy_unknown_secret") is None
        assert stores.keys.verify("") is None
        assert stores.keys.verify(SQLISH) is None

    def test_revoked_keys_fail(self, stores: Stores) -> None:
        key, secret = stores.keys.create(A, "k", [Scope.ADMIN])
        assert stores.keys.revoke(key.key_id) is True
        assert stores.keys.verify(secret) is None
        assert stores.keys.revoke(key.key_id) is False
        assert stores.keys.revoke("no-such-key") is False
        [listed] = stores.keys.list(A)
        assert listed.revoked_at is not None

    def test_list_by_tenant(self, stores: Stores) -> None:
        a1, _ = stores.keys.create(A, "one", [Scope.INGEST])
        a2, _ = stores.keys.create(A, "two", [Scope.SERVE])
        b1, _ = stores.keys.create(B, "three", [Scope.ADMIN])
        assert {k.key_id for k in stores.keys.list(A)} == {a1.key_id, a2.key_id}
        assert [k.key_id for k in stores.keys.list(B)] == [b1.key_id]
        assert len(stores.keys.list()) == 3

    def test_secret_is_not_stored(self, stores: Stores) -> None:
        _, secret = stores.keys.create(A, "k", [Scope.ADMIN])
        assert stores.database is not None
        import sqlalchemy as sa

        with stores.database.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM personify_api_keys")).all()
        dumped = repr(rows)
        assert secret not in dumped and secret.split("_", 2)[2] not in dumped


class ErasureStoreContract:
    """:class:`~personify.storage.ports.ErasureStore`."""

    def test_record_and_check(self, stores: Stores) -> None:
        erasures = stores.erasures
        digest = erasures.user_id_hash(A, "Иван")
        assert "Иван" not in digest and len(digest) == 64
        assert erasures.is_erased(A, "Иван") is False
        erased_at = datetime(2024, 5, 1, tzinfo=UTC)
        erasures.record(A, digest, erased_at, "receipt-1")
        assert erasures.is_erased(A, "Иван") is True
        assert erasures.is_erased(A, "иван") is False
        found = erasures.find(A, "Иван")
        assert found is not None
        assert found.receipt_id == "receipt-1" and found.erased_at == erased_at

    def test_hash_is_keyed_per_tenant_and_stable(self, stores: Stores) -> None:
        erasures = stores.erasures
        assert erasures.user_id_hash(A, "u1") == erasures.user_id_hash(A, "u1")
        assert erasures.user_id_hash(A, "u1") != erasures.user_id_hash(B, "u1")
        import hashlib

        assert erasures.user_id_hash(A, "u1") != hashlib.sha256(b"u1").hexdigest()

    def test_erased_among(self, stores: Stores) -> None:
        erasures = stores.erasures
        assert erasures.erased_among(A, ["u1", "u2"]) == set()
        for user_id in ("u1", "Ёж"):
            erasures.record(A, erasures.user_id_hash(A, user_id), datetime.now(UTC), "r")
        ids = [f"x{i}" for i in range(1_200)] + ["Ёж", "u1", "u1"]
        assert erasures.erased_among(A, ids) == {"u1", "Ёж"}
        assert erasures.erased_among(B, ids) == set()
        assert erasures.erased_among(A, []) == set()

    def test_erased_since(self, stores: Stores) -> None:
        erasures = stores.erasures
        t0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
        for k, user_id in enumerate(["u1", "u2", "u3"]):
            erasures.record(A, erasures.user_id_hash(A, user_id), t0 + timedelta(hours=k), f"r{k}")
        erasures.record(B, erasures.user_id_hash(B, "u9"), t0 + timedelta(hours=5), "rb")
        found = erasures.erased_since(A, t0 + timedelta(hours=1))
        assert [t.receipt_id for t in found] == ["r1", "r2"]
        assert found[0].user_id_hash == erasures.user_id_hash(A, "u2")
        assert found[0].erased_at == t0 + timedelta(hours=1)
        assert erasures.erased_since(A, t0 + timedelta(hours=3)) == []

    def test_tenant_isolation(self, stores: Stores) -> None:
        erasures = stores.erasures
        erasures.record(A, erasures.user_id_hash(A, "u1"), datetime.now(UTC), "r")
        assert erasures.is_erased(A, "u1") and not erasures.is_erased(B, "u1")


class MigrationContract:
    """Schema migrations: automatic, idempotent, safe under concurrent start."""

    def test_fresh_database_is_at_head(self, stores: Stores) -> None:
        from personify.storage.sql.migrate import engine_revision, head_revision

        assert stores.database is not None
        assert engine_revision(stores.database.engine) == head_revision()

    def test_open_twice_is_idempotent_and_keeps_data(self, stores: Stores) -> None:
        _needs_reopenable(stores)
        stores.events.append(A, [event("e1")])
        from personify.storage.sql.migrate import current_revision, head_revision, upgrade

        with open_stores(stores.engine_url) as again:
            assert again.events.count(A) == 1
        assert upgrade(stores.engine_url) == head_revision()
        assert current_revision(stores.engine_url) == head_revision()

    def test_concurrent_open_of_a_fresh_database(self, stores_url: str) -> None:
        if stores_url.startswith("memory://"):
            pytest.skip("memory:// cannot be shared between processes")
        script = (
            "import sys; from personify.storage.registry import open_stores; "
            "s = open_stores(sys.argv[1]); print(s.events.count('x')); s.close()"
        )
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", script, stores_url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        errors: list[BaseException] = []

        def open_in_thread() -> None:
            try:
                open_stores(stores_url).close()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=open_in_thread) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outputs = [process.communicate(timeout=120) for process in processes]
        assert errors == []
        for process, (out, err) in zip(processes, outputs, strict=True):
            assert process.returncode == 0, err
            assert out.strip() == "0"

    def test_migrated_schema_matches_the_table_definitions(self, stores: Stores) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        from personify.storage.sql.schema import metadata

        assert stores.database is not None
        with stores.database.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []

    def test_unknown_scheme_names_the_accepted_ones(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            open_stores("mysql://localhost/db")
        assert caught.value.accepted is not None and "sqlite:///" in caught.value.accepted
        assert caught.value.field == "database_url"


ALL_CONTRACTS = (
    EventStoreContract,
    UserStoreContract,
    CatalogStoreContract,
    ConsentStoreContract,
    KeyStoreContract,
    ErasureStoreContract,
    MigrationContract,
)
