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
