"""One writer at a time for a tenant's served model, across threads and processes.

Erasing a person from the served model, and promoting or rolling back a version, each read the
promoted version, derive a new one and promote it: a read-modify-write. Two of them at once
(two API workers, or the API and ``personify privacy erase``) would each start from the same
version and the second promotion would silently drop the first one's subtraction. The lock
makes them take turns:

* on PostgreSQL, a session-level advisory lock (``pg_advisory_lock``) keyed by the tenant, held
  on a dedicated connection, so every process sharing the database takes turns;
* otherwise (SQLite, ``memory://``, no database), an exclusive ``fcntl.flock`` on
  ``<model_dir>/<tenant>/.model.lock``, so every process sharing the model directory does.

Within a process the lock is re-entrant per thread (a promotion that derives a cleaned version
and promotes it holds it once).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from personify.domain.tenants import validate_tenant_id
from personify.storage.sql.database import Database

LOCK_FILE = ".model.lock"
ADVISORY_NAMESPACE = "personify-model-writer"


@dataclass
class _Holder:
    """The process-wide state of one lock: the thread lock and how deep its owner holds it."""

    local: threading.RLock = field(default_factory=threading.RLock)
    depth: int = 0
    release: Callable[[], None] | None = None


_holders: dict[tuple[str, str], _Holder] = {}
_holders_guard = threading.Lock()


def advisory_key(tenant: str) -> int:
    """The signed 64-bit ``pg_advisory_lock`` key of ``tenant``'s model writer."""
    digest = hashlib.sha256(f"{ADVISORY_NAMESPACE}\x00{tenant}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class ModelLock:
    """``with lock.hold(tenant): ...`` serializes model writers of ``tenant`` (see the module)."""

    def __init__(self, root: str | Path, database: Database | None = None) -> None:
        self.root = Path(root)
        self.database = database if database is not None and database.is_postgres else None

    @property
    def kind(self) -> str:
        """``postgres-advisory`` or ``file``."""
        return "postgres-advisory" if self.database is not None else "file"

    def _holder(self, tenant: str) -> _Holder:
        scope = (
            f"pg:{self.database.engine.url.render_as_string(hide_password=True)}"
            if self.database is not None
            else f"file:{os.path.realpath(self.root)}"
        )
        with _holders_guard:
            return _holders.setdefault((scope, tenant), _Holder())

    @contextmanager
    def hold(self, tenant: str) -> Iterator[None]:
        validate_tenant_id(tenant)
        holder = self._holder(tenant)
        with holder.local:
            if holder.depth == 0:
                holder.release = self._acquire(tenant)
            holder.depth += 1
            try:
                yield
            finally:
                holder.depth -= 1
                if holder.depth == 0 and holder.release is not None:
                    release, holder.release = holder.release, None
                    release()

    def _acquire(self, tenant: str) -> Callable[[], None]:
        if self.database is not None:
            return _advisory_lock(self.database, advisory_key(tenant))
        return _file_lock(self.root / tenant / LOCK_FILE)


def _file_lock(path: Path) -> Callable[[], None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise

    def release() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    return release


def _advisory_lock(database: Database, key: int) -> Callable[[], None]:
    conn = database.engine.connect()
    try:
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        conn.commit()
    except BaseException:
        conn.close()
        raise

    def release() -> None:
        try:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()
        finally:
            conn.close()

    return release
