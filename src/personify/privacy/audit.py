"""The audit log of personal-data access: which key read or changed whose data, when, how.

Entries name the person by pseudonym only, so the log can be kept longer than the data it
describes (and survives the person's erasure without re-identifying them).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Protocol

from personify.domain.privacy import AuditEntry


class AuditLog(Protocol):
    """Append-only log of :class:`AuditEntry`; ``list`` is newest first."""

    def record(self, entry: AuditEntry) -> AuditEntry: ...

    def list(
        self,
        tenant: str,
        *,
        subject: str | None = None,
        key_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]: ...

    def delete_older_than(self, tenant: str, cutoff: datetime) -> int: ...


class MemoryAuditLog:
    """The in-process :class:`AuditLog` (tests, stores without a database)."""

    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []
        self._lock = threading.Lock()

    def record(self, entry: AuditEntry) -> AuditEntry:
        with self._lock:
            stored = entry.model_copy(update={"entry_id": len(self._entries) + 1})
            self._entries.append(stored)
        return stored

    def list(
        self,
        tenant: str,
        *,
        subject: str | None = None,
        key_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        with self._lock:
            found = [
                e for e in reversed(self._entries)
                if e.tenant == tenant
                and (subject is None or e.subject == subject)
                and (key_id is None or e.key_id == key_id)
                and (since is None or e.at >= since)
            ]
        return found[:limit]

    def delete_older_than(self, tenant: str, cutoff: datetime) -> int:
        with self._lock:
            before = len(self._entries)
            self._entries = [e for e in self._entries if e.tenant != tenant or e.at >= cutoff]
            return before - len(self._entries)
