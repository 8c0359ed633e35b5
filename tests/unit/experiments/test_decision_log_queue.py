"""The decision log written behind the request path (pages of rows): queued records are read
back before they are written, written in batches by the background thread, written on close
(a clean shutdown loses nothing), written on the caller's thread when the queue is full, and a
page request leaves its decision to the queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from personify.experiments.bandits import DecisionLog
from personify.runtime.decision_log import QueuedDecisionLog
from personify.storage.registry import Stores, open_stores
from personify.storage.sql.experiments import SqlDecisionLogStore

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    with open_stores(f"sqlite:///{tmp_path / 'log.db'}") as opened:
        yield opened


def _store(stores: Stores) -> SqlDecisionLogStore[DecisionLog]:
    assert stores.database is not None
    return SqlDecisionLogStore(stores.database, DecisionLog.from_dict)


def _decision(k: int) -> DecisionLog:
    return DecisionLog(f"dec-{k}", [1.0, 0.0], ["a", "b"], ["b", "a"], [0.9, 1.0], "page:home",
                       NOW)


def test_queued_records_are_read_back_then_written_in_one_batch(stores: Stores) -> None:
    store = _store(stores)
    queue = QueuedDecisionLog(store, flush_interval_s=3600)  # the thread never wakes here
    for k in range(5):
        queue.record_later("default", _decision(k))
    assert store.get("default", "dec-3") is None, "not written on the caller's path"
    assert queue.get("default", "dec-3") == _decision(3)
    assert queue.queued == 5
    assert queue.flush() == 5
    assert store.get("default", "dec-3") == _decision(3)
    assert queue.queued == 0
    queue.close()


def test_background_thread_writes_within_its_interval(stores: Stores) -> None:
    store = _store(stores)
    queue = QueuedDecisionLog(store, flush_interval_s=0.02)
    queue.record_later("default", _decision(1))
    deadline = time.monotonic() + 10
    while store.get("default", "dec-1") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.get("default", "dec-1") == _decision(1)
    queue.close()


def test_close_writes_everything_queued(stores: Stores) -> None:
    store = _store(stores)
    queue = QueuedDecisionLog(store, flush_interval_s=3600, max_batch=7)
    for k in range(30):
        queue.record_later("default", _decision(k))
    queue.close()
    assert sorted(d.decision_id for d in store.scan("default")) == sorted(
        f"dec-{k}" for k in range(30)
    )
    # after close nothing is queued any more: a late record is written at once
    queue.record_later("default", _decision(99))
    assert store.get("default", "dec-99") is not None
    assert queue.synchronous == 1


def test_a_full_queue_writes_on_the_callers_thread(stores: Stores) -> None:
    store = _store(stores)
    queue = QueuedDecisionLog(store, flush_interval_s=3600, max_queue=2)
    for k in range(4):
        queue.record_later("default", _decision(k))
    assert queue.queued == 2
    assert queue.synchronous == 2
    assert store.get("default", "dec-3") is not None, "written, not dropped"
    assert [d.decision_id for d in queue.scan("default")] == [f"dec-{k}" for k in range(4)]
    queue.close()


def test_a_failed_batch_stays_queued(stores: Stores) -> None:
    store = _store(stores)
    queue = QueuedDecisionLog(store, flush_interval_s=3600)
    queue.record_later("default", _decision(1))
    real = store.record_many
    calls = []

    def broken(batch: object) -> None:
        calls.append(batch)
        raise RuntimeError("database down")

    store.record_many = broken  # type: ignore[method-assign]
    assert queue.flush() == 0
    assert queue.queued == 1 and queue.failed == 1
    store.record_many = real  # type: ignore[method-assign]
    assert queue.flush() == 1
    assert store.get("default", "dec-1") is not None
    queue.close()


def test_records_queued_from_many_threads_are_all_written(stores: Stores) -> None:
    store = _store(stores)
    queue = QueuedDecisionLog(store, flush_interval_s=0.005, max_batch=13)

    def work(base: int) -> None:
        for k in range(50):
            queue.record_later("default", _decision(base + k))

    threads = [threading.Thread(target=work, args=(1000 * t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.close()
    assert len(list(store.scan("default"))) == 200
