"""Concurrent erasures in two processes both reach the served model: the tenant's model lock
(a file lock on SQLite, an advisory lock on PostgreSQL) serializes the read-modify-write of the
promoted version, so neither subtraction is lost."""

from __future__ import annotations

import multiprocessing
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from personify.domain.events import Event
from personify.jobs.training import TrainingConfig, train_bundle, train_tenant
from personify.privacy.model_influence import load_influence, version_dir
from personify.privacy.model_lock import ModelLock
from personify.privacy.pseudonyms import tombstone_key
from personify.privacy.runtime import open_runtime
from personify.serving.model_registry import BundleRegistry
from personify.storage.registry import open_stores

T = "default"
CONFIG = TrainingConfig(learn_blend=False, train_ranker=False)
NOW = datetime.now(UTC).replace(microsecond=0)


def _events() -> list[Event]:
    rng = random.Random(11)
    return [
        Event(event_id=f"e{u}-{j}", type="view", user_id=f"u{u}", item_id=f"i{rng.randint(0, 25)}",
              timestamp=NOW - timedelta(hours=rng.randint(1, 300)))
        for u in range(30) for j in range(rng.randint(2, 6))
    ]


def _erase_in_child(url: str, model_dir: str, user: str, start_after: float, slow: float,
                    barrier: Any, results: Any) -> None:
    """One process erasing ``user``; its subtraction takes ``slow`` extra seconds, so without
    the lock the slow process would promote a version that lacks the other one's erasure."""
    import personify.privacy.model_versions as versions

    original = versions.forget_rows

    def slow_forget_rows(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        time.sleep(slow)
        return out

    versions.forget_rows = slow_forget_rows
    with open_stores(url, migrate=False) as stores:
        runtime = open_runtime(stores, demo=True)
        models = runtime.model_store(model_dir)
        registry = BundleRegistry(models)
        service = runtime.erasure(forget_model=lambda t, k: models.forget(registry, t, k))
        barrier.wait(timeout=60)
        time.sleep(start_after)
        result = service.erase_user(T, user)
        results.put((user, result.model.status, result.model.version))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lock.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_two_processes_erasing_at_once_both_reach_the_model(
    database_url: str, tmp_path: Path
) -> None:
    events = _events()
    model_dir = str(tmp_path / "models")
    with open_stores(database_url) as stores:
        stores.events.append(T, events)
        runtime = open_runtime(stores, demo=True)
        models = runtime.model_store(model_dir)
        expected_lock = "postgres-advisory" if database_url.startswith("postgres") else "file"
        assert models.lock.kind == expected_lock
        base = train_tenant(stores.events, models, T, CONFIG, privacy=runtime.training()).version
        keys = {u: tombstone_key(stores.erasures.user_id_hash(T, u)) for u in ("u3", "u8")}

    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2), context.Queue()
    children = [
        context.Process(target=_erase_in_child,
                        args=(database_url, model_dir, "u3", 0.0, 1.5, barrier, results)),
        context.Process(target=_erase_in_child,
                        args=(database_url, model_dir, "u8", 0.3, 0.0, barrier, results)),
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
        assert child.exitcode == 0
    finished = {results.get(timeout=5)[0] for _ in children}
    assert finished == {"u3", "u8"}

    with open_stores(database_url, migrate=False) as stores:
        models = open_runtime(stores, demo=True).model_store(model_dir)
        served = models.promoted_version(T)
        assert served is not None and served != base
        index = load_influence(version_dir(models, T, served))
        assert index is not None
        assert keys["u3"] not in index.keys and keys["u8"] not in index.keys, "an erasure was lost"
        _, bundle = models.load(T, served)
    fresh, _ = train_bundle([e for e in events if e.user_id not in ("u3", "u8")], CONFIG,
                            version="x")
    got = {i: round(float(v), 4) for i, v in zip(bundle.items.ids, bundle.popularity,
                                                  strict=True) if v > 0}
    want = {i: round(float(v), 4) for i, v in zip(fresh.items.ids, fresh.popularity,
                                                   strict=True) if v > 0}
    assert got == want


def test_the_lock_is_reentrant_and_exclusive_between_holders(tmp_path: Path) -> None:
    lock = ModelLock(tmp_path)
    with lock.hold(T), lock.hold(T):  # re-entrant in one thread
        assert (tmp_path / T / ".model.lock").exists()
    import fcntl
    import os

    fd = os.open(tmp_path / T / ".model.lock", os.O_RDWR)
    try:  # released: another process (another open file) can take it
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        with lock.hold(T), pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: the other one must wait
    finally:
        os.close(fd)
