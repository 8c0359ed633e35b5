"""One retrain at a time across processes: the file lock (shared model directory) and the
PostgreSQL advisory lock (shared database); the scheduler skips a retrain held elsewhere."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from personify.jobs.retrain_lock import RetrainLock
from personify.jobs.scheduler import RetrainScheduler


def _hold_in_child(code: str) -> subprocess.Popen[str]:
    """A child process that takes a lock, prints 'held' and waits for stdin to close."""
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "held"
    return child


def _release(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.close()
    child.wait(timeout=30)


def test_file_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    lock = RetrainLock(tmp_path)
    assert lock.kind == "file"
    child = _hold_in_child(f"""
        import sys
        from personify.jobs.retrain_lock import RetrainLock
        with RetrainLock({str(tmp_path)!r}).attempt("default") as held:
            print("held" if held else "not held", flush=True)
            sys.stdin.read()
    """)
    try:
        with lock.attempt("default") as held:
            assert held is False
        with lock.attempt("other") as held:
            assert held is True, "a lock per tenant"
    finally:
        _release(child)
    with lock.attempt("default") as held:
        assert held is True


def test_scheduler_skips_a_retrain_another_process_runs(tmp_path: Path) -> None:
    runs: list[str] = []
    skipped: list[str] = []
    lock = RetrainLock(tmp_path)
    scheduler = RetrainScheduler(lambda t: runs.append(t) or 0, every_events=1,
                                 lock=lock.attempt, on_skipped=skipped.append)
    child = _hold_in_child(f"""
        import sys
        from personify.jobs.retrain_lock import RetrainLock
        with RetrainLock({str(tmp_path)!r}).attempt("default") as held:
            print("held" if held else "not held", flush=True)
            sys.stdin.read()
    """)
    try:
        scheduler.request("default")
        assert scheduler.tick() == [] and runs == [] and skipped == ["default"]
    finally:
        _release(child)
    scheduler.add_pending("default", 5)
    assert scheduler.tick() == ["default"] and runs == ["default"]


@pytest.mark.postgres
def test_advisory_lock_is_exclusive_across_processes(postgres_url: str, tmp_path: Path) -> None:
    from personify.storage.sql.database import Database, create_engine

    database = Database(create_engine(postgres_url))
    lock = RetrainLock(tmp_path / "a", database)  # model directories differ: only PG is shared
    assert lock.kind == "postgres-advisory"
    child = _hold_in_child(f"""
        import sys
        from personify.jobs.retrain_lock import RetrainLock
        from personify.storage.sql.database import Database, create_engine
        db = Database(create_engine({postgres_url!r}))
        with RetrainLock({str(tmp_path / "b")!r}, db).attempt("default") as held:
            print("held" if held else "not held", flush=True)
            sys.stdin.read()
    """)
    try:
        with lock.attempt("default") as held:
            assert held is False
    finally:
        child.kill()  # a killed holder's session ends, and its lock with it
        child.wait(timeout=30)
    with lock.attempt("default") as held:
        assert held is True
    database.dispose()
