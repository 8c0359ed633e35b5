"""Anti-repetition across workers: two service instances (two runtimes, as two server
processes would build them) over one PostgreSQL database and one Redis. What worker A showed a
person sinks in worker B's next answer to them; without Redis each worker remembers only its
own answers; a click through either clears the count; erasure deletes the shared record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from personify.runtime.container import Runtime, build_runtime
from personify.serving.repetition import SharedShownItems, ShownItems
from personify.serving.request import RecommendationRequest
from personify.settings import Settings

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
NOW = datetime.now(UTC)


def _seed(runtime: Runtime) -> None:
    from personify.domain.consents import ConsentRecord
    from personify.domain.items import Item

    stores = runtime.stores
    stores.catalog.upsert("default", [Item(item_id=f"i{k}", title=f"Item {k}")
                                      for k in range(12)])
    for user in ["ana", *(f"crowd{k}" for k in range(12))]:
        for purpose in ("personalization", "profiling"):
            stores.consents.append("default", ConsentRecord(
                user_id=user, purpose=purpose, state="granted",
                recorded_at=NOW - timedelta(days=1)))
    events = [{"event_id": f"v{i}-{k}", "type": "view", "user_id": f"crowd{k}",
               "item_id": f"i{i}", "timestamp": (NOW - timedelta(minutes=k)).isoformat()}
              for i in range(12) for k in range(12 - i)]
    assert not runtime.ingestor.ingest("default", events).rejected


def _answer(runtime: Runtime, **extra: object) -> list[str]:
    request = RecommendationRequest.model_validate({"user_id": "ana", "n": 4,
                                                    "sources": ["trending"], **extra})
    return [i.item_id for i in runtime.engine.service.recommend("default", request).items]


def test_what_one_worker_showed_sinks_in_the_other(
    postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    settings = Settings(database_url=postgres_url, demo=False, redis_url=redis_url,
                        redis_prefix=redis_prefix,
                        redis_key_secret="a-test-secret-of-at-least-24-chars")
    a, b = build_runtime(settings), build_runtime(settings)
    try:
        assert isinstance(a.engine.service.shown, SharedShownItems)
        assert isinstance(a.engine.service.shown.local, ShownItems)
        _seed(a)
        first = _answer(a)
        assert len(first) == 4
        second = _answer(b)
        assert _answer(b, repetition={"penalty": 1}) == first, "the same answer, unpenalized"
        # per worker (in-process memory) b would answer ``first`` again: it never showed it
        assert second != first and len(set(second) - set(first)) >= 2, (first, second)
        # a click on a shown item, ingested by worker b, clears that item's count for a too
        click = {"event_id": "ana-click", "type": "click", "user_id": "ana",
                 "item_id": first[0], "timestamp": datetime.now(UTC).isoformat()}
        assert not b.ingestor.ingest("default", [click]).rejected
        counts = a.engine.service.shown.unclicked(
            "default", "ana", NOW - timedelta(hours=1),
            a.engine.state.user_state("default", "ana").recent)
        assert first[0] not in counts and all(counts.get(i, 0) >= 1 for i in first[1:])
        # erasure through one worker deletes the shared record
        b.erase_subjects("default", user_ids=["ana"])
        assert a.engine.service.shown.unclicked("default", "ana", NOW - timedelta(hours=1),
                                                []) == {}
    finally:
        a.close()
        b.close()


def _anonymous_answer(runtime: Runtime, visitor: str) -> list[str]:
    request = RecommendationRequest.model_validate({"anonymous_id": visitor, "n": 4,
                                                    "sources": ["trending"]})
    return [i.item_id for i in runtime.engine.service.recommend("default", request).items]


def _shown_to(runtime: Runtime, subject: str) -> dict[str, int]:
    return runtime.engine.service.shown.unclicked("default", subject, NOW - timedelta(hours=1),
                                                  [])


def _link(runtime: Runtime, visitor: str) -> None:
    from personify.runtime.identity import link_anonymous

    link_anonymous(runtime.stores, "default", "ana", visitor, state=runtime.engine.state,
                   shown=runtime.engine.service.shown)


def test_what_a_visitor_was_shown_follows_them_into_their_account_through_redis(
    postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    """The login merge moves the shared shown list (it was deleted with the visitor's keys,
    and the account's own list with it): the first answer after login sinks what the visitor
    saw, on another worker too, and what the account was shown before stays counted."""
    from personify.domain.consents import ConsentRecord

    settings = Settings(database_url=postgres_url, demo=False, redis_url=redis_url,
                        redis_prefix=redis_prefix,
                        redis_key_secret="a-test-secret-of-at-least-24-chars")
    a, b = build_runtime(settings), build_runtime(settings)
    try:
        _seed(a)
        for purpose in ("personalization", "profiling"):
            a.stores.consents.append("default", ConsentRecord(
                user_id="visitor-1", purpose=purpose, state="granted",
                recorded_at=NOW - timedelta(days=1)))
        before_login = _answer(a)  # the account was shown something earlier
        seen_anonymously = _anonymous_answer(a, "visitor-1")
        assert len(seen_anonymously) == 4
        assert set(_shown_to(b, "anon:visitor-1")) == set(seen_anonymously)
        _link(b, "visitor-1")
        after = _shown_to(a, "ana")  # worker a reads the shared list: nothing lost
        assert set(after) == set(before_login) | set(seen_anonymously)
        assert all(after[i] == 2 for i in set(before_login) & set(seen_anonymously))
        assert _shown_to(a, "anon:visitor-1") == {}
        shared = a.engine.service.shown
        assert isinstance(shared, SharedShownItems)
        answers = shared.store.shown_answers("default", "ana")
        assert [items for _, items in answers] == [seen_anonymously, before_login]  # newest 1st
    finally:
        a.close()
        b.close()


def test_the_in_process_memory_moves_at_the_merge_too(tmp_path: object) -> None:
    from pathlib import Path

    from personify.domain.consents import ConsentRecord

    settings = Settings(database_url=f"sqlite:///{Path(str(tmp_path)) / 'm.db'}", demo=False)
    runtime = build_runtime(settings)
    try:
        assert isinstance(runtime.engine.service.shown, ShownItems)
        _seed(runtime)
        for purpose in ("personalization", "profiling"):
            runtime.stores.consents.append("default", ConsentRecord(
                user_id="visitor-2", purpose=purpose, state="granted",
                recorded_at=NOW - timedelta(days=1)))
        seen = _anonymous_answer(runtime, "visitor-2")
        assert set(_shown_to(runtime, "anon:visitor-2")) == set(seen)
        unpenalized = _answer(runtime, repetition={"penalty": 1})
        assert unpenalized == seen  # the same crowd answer: only the memory tells them apart
        _link(runtime, "visitor-2")
        assert set(_shown_to(runtime, "ana")) == set(seen)
        assert _shown_to(runtime, "anon:visitor-2") == {}
        assert len(set(_answer(runtime)) - set(seen)) >= 2  # the account's first answer moves on
    finally:
        runtime.close()
