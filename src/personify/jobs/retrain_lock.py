"""One background retrain of a tenant at a time, across every process and machine.

Each API server may run the embedded :class:`~personify.jobs.scheduler.RetrainScheduler` and a
``personify worker retrain`` may run one too; without a shared lock two machines would train the
same events at once and promote one after the other. ``RetrainLock.attempt(tenant)`` never
waits: it yields True when this process now holds the tenant's retrain lock, False when another
process does (the due retrain is then skipped here, the holder is training those events):

* on PostgreSQL, a session-level advisory lock (``pg_try_advisory_lock``) on a dedicated
  connection: a crashed or killed holder's session ends and the lock with it;
* otherwise an exclusive non-blocking ``flock`` on ``<model_dir>/<tenant>/.retrain.lock`` (every
  process sharing the model directory on one machine or one POSIX-locking file system).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from personify.domain.tenants import validate_tenant_id
from personify.storage.sql.database import Database

LOCK_FILE = ".retrain.lock"
ADVISORY_NAMESPACE = "personify-retrain"


def retrain_key(tenant: str) -> int:
    """The signed 64-bit advisory-lock key of ``tenant``'s retrain."""
    digest = hashlib.sha256(f"{ADVISORY_NAMESPACE}\x00{tenant}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class RetrainLock:
    """``with lock.attempt(tenant) as held: ...`` (see the module docstring)."""

    def __init__(self, model_dir: str | Path, database: Database | None = None) -> None:
        self.root = Path(model_dir)
        self.database = database if database is not None and database.is_postgres else None

    @property
    def kind(self) -> str:
        """``postgres-advisory`` or ``file``."""
        return "postgres-advisory" if self.database is not None else "file"

    @contextmanager
    def attempt(self, tenant: str) -> Iterator[bool]:
        validate_tenant_id(tenant)
        if self.database is not None:
            with self._advisory(retrain_key(tenant)) as held:
                yield held
        else:
            with self._file(self.root / tenant / LOCK_FILE) as held:
                yield held

    @contextmanager
    def _advisory(self, key: int) -> Iterator[bool]:
        assert self.database is not None
        with self.database.engine.connect() as conn:
            held = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
                        .scalar())
            conn.commit()
            try:
                yield held
            finally:
                if held:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()

    @contextmanager
    def _file(self, path: Path) -> Iterator[bool]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
