"""In-process adapters of the messaging ports, for tests and single-process development."""

from __future__ import annotations

import copy
import threading
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from personify.messaging.item_updates import ItemChange
from personify.messaging.records import (
    DeliveryStatus,
    InboxEntry,
    JourneyRun,
    OutboxMessage,
    RunStatus,
    TrackedLink,
)


class MemoryOutboxStore:
    """Outbox in a dict; claims are atomic under one lock."""

    def for_user(self, tenant: str, user_id: str) -> list[OutboxMessage]:
        """Every message queued or sent to the person (data-subject export)."""
        with self._lock:
            return [
                m for m in self._messages.values() if m.tenant == tenant and m.user_id == user_id
            ]

    def delete_user(self, tenant: str, user_id: str) -> int:
        """Erasure: the person's messages and their tracked links."""
        with self._lock:
            gone = [
                k for k, m in self._messages.items() if m.tenant == tenant and m.user_id == user_id
            ]
            for message_id in gone:
                message = self._messages.pop(message_id)
                self._by_key.pop((message.tenant, message.dedup_key), None)
            for key in [k for k in self._links if k[0] in set(gone)]:
                del self._links[key]
            return len(gone)

    def __init__(self) -> None:
        self._messages: dict[str, OutboxMessage] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._links: dict[tuple[str, str], TrackedLink] = {}
        self._lock = threading.Lock()

    def enqueue(self, message: OutboxMessage) -> tuple[OutboxMessage, bool]:
        with self._lock:
            existing = self._by_key.get((message.tenant, message.dedup_key))
            if existing is not None:
                return copy.deepcopy(self._messages[existing]), False
            self._messages[message.message_id] = copy.deepcopy(message)
            self._by_key[(message.tenant, message.dedup_key)] = message.message_id
            return copy.deepcopy(message), True

    def claim(
        self, worker: str, now: datetime, *, limit: int, lease: timedelta
    ) -> list[OutboxMessage]:
        claimed: list[OutboxMessage] = []
        with self._lock:
            due = sorted(
                (m for m in self._messages.values() if _is_due(m, now)),
                key=lambda m: m.not_before or now,
            )
            for message in due[:limit]:
                if message.status == DeliveryStatus.SENDING:
                    message.in_doubt = message.in_doubt or message.send_started
                message.send_started = False
                message.status = DeliveryStatus.SENDING
                message.lease_until = now + lease
                message.claim_token = f"{worker}:{uuid.uuid4().hex}"
                claimed.append(copy.deepcopy(message))
        return claimed

    def begin_send(
        self,
        message_id: str,
        claim_token: str,
        links: Mapping[str, TrackedLink] | None = None,
    ) -> bool:
        with self._lock:
            message = self._messages.get(message_id)
            if message is None or message.claim_token != claim_token:
                return False
            message.send_started = True
            for link_id, link in (links or {}).items():
                self._links[(message_id, link_id)] = link
            return True

    def mark(
        self,
        message_id: str,
        claim_token: str,
        status: DeliveryStatus,
        now: datetime,
        *,
        not_before: datetime | None = None,
        error: str | None = None,
        attempts: int | None = None,
    ) -> bool:
        with self._lock:
            message = self._messages.get(message_id)
            if message is None or message.claim_token != claim_token:
                return False
            message.status = status
            message.lease_until = None
            message.claim_token = None
            message.last_error = error
            message.send_started = False
            if attempts is not None:
                message.attempts = attempts
            if status == DeliveryStatus.SENT:
                message.sent_at = now
            if not_before is not None:
                message.not_before = not_before
            return True

    def get(self, message_id: str) -> OutboxMessage | None:
        with self._lock:
            message = self._messages.get(message_id)
            return copy.deepcopy(message) if message else None

    def count_sent(
        self, tenant: str, user_id: str, channel: str, since: datetime, until: datetime
    ) -> int:
        with self._lock:
            return sum(
                1
                for m in self._messages.values()
                if m.tenant == tenant
                and m.user_id == user_id
                and m.channel == channel
                and not m.transactional
                and m.status == DeliveryStatus.SENT
                and m.sent_at is not None
                and since <= m.sent_at < until
            )

    def count_sent_many(
        self, tenant: str, channel: str, windows: Mapping[str, tuple[datetime, datetime]]
    ) -> dict[str, int]:
        return {
            user_id: self.count_sent(tenant, user_id, channel, since, until)
            for user_id, (since, until) in windows.items()
        }

    def counts(self, tenant: str | None = None) -> dict[str, int]:
        with self._lock:
            return dict(
                Counter(
                    str(m.status)
                    for m in self._messages.values()
                    if tenant is None or m.tenant == tenant
                )
            )

    def save_links(self, message_id: str, links: dict[str, TrackedLink]) -> None:
        with self._lock:
            for link_id, link in links.items():
                self._links[(message_id, link_id)] = link

    def get_link(self, message_id: str, link_id: str) -> TrackedLink | None:
        with self._lock:
            return self._links.get((message_id, link_id))


def _is_due(message: OutboxMessage, now: datetime) -> bool:
    if message.status in (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED):
        return message.not_before is None or message.not_before <= now
    if message.status == DeliveryStatus.SENDING:
        return message.lease_until is not None and message.lease_until <= now
    return False


class MemorySuppressionStore:
    def delete_user(self, tenant: str, user_id: str) -> int:
        gone = [k for k in self._entries if k[0] == tenant and k[1] == user_id]
        for key in gone:
            del self._entries[key]
        return len(gone)

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str], tuple[datetime, str]] = {}

    def suppress(self, tenant: str, user_id: str, channel: str, now: datetime, reason: str) -> None:
        self._entries[(tenant, user_id, channel)] = (now, reason)

    def is_suppressed(self, tenant: str, user_id: str, channel: str) -> bool:
        return (tenant, user_id, channel) in self._entries or (
            tenant,
            user_id,
            "*",
        ) in self._entries

    def lift(self, tenant: str, user_id: str, channel: str) -> bool:
        return self._entries.pop((tenant, user_id, channel), None) is not None


class MemoryInboxStore:
    def delete_user(self, tenant: str, user_id: str) -> int:
        gone = [k for k, e in self._entries.items() if e.tenant == tenant and e.user_id == user_id]
        for key in gone:
            del self._entries[key]
        return len(gone)

    def __init__(self) -> None:
        self._entries: dict[str, InboxEntry] = {}

    def add(self, entry: InboxEntry) -> InboxEntry:
        self._entries.setdefault(entry.entry_id, copy.deepcopy(entry))
        return copy.deepcopy(self._entries[entry.entry_id])

    def list(
        self, tenant: str, user_id: str, *, unread_only: bool = False, limit: int = 50
    ) -> list[InboxEntry]:
        rows = [
            e
            for e in self._entries.values()
            if e.tenant == tenant and e.user_id == user_id and not (unread_only and e.read_at)
        ]
        rows.sort(key=lambda e: (e.created_at or datetime.min, e.entry_id), reverse=True)
        return [copy.deepcopy(e) for e in rows[:limit]]

    def mark_read(self, tenant: str, user_id: str, entry_ids: Sequence[str], now: datetime) -> int:
        changed = 0
        for entry_id in entry_ids:
            entry = self._entries.get(entry_id)
            if entry and entry.tenant == tenant and entry.user_id == user_id and not entry.read_at:
                entry.read_at = now
                changed += 1
        return changed


class MemoryJourneyStateStore:
    def delete_user(self, tenant: str, user_id: str) -> int:
        gone = [k for k, r in self._runs.items() if r.tenant == tenant and r.user_id == user_id]
        for key in gone:
            del self._runs[key]
        return len(gone)

    def __init__(self) -> None:
        self._runs: dict[str, JourneyRun] = {}

    def save(self, run: JourneyRun) -> None:
        self._runs[run.run_id] = copy.deepcopy(run)

    def active(self, tenant: str, user_id: str) -> list[JourneyRun]:
        return [
            copy.deepcopy(r)
            for r in self._runs.values()
            if r.tenant == tenant and r.user_id == user_id and r.status == RunStatus.ACTIVE
        ]

    def latest(self, tenant: str, journey: str, user_id: str) -> JourneyRun | None:
        runs = [
            r
            for r in self._runs.values()
            if r.tenant == tenant and r.journey == journey and r.user_id == user_id
        ]
        if not runs:
            return None
        return copy.deepcopy(max(runs, key=lambda r: (r.entered_at, r.run_id)))

    def save_many(self, runs: Sequence[JourneyRun]) -> None:
        for run in runs:
            self.save(run)

    def active_many(self, tenant: str, user_ids: Sequence[str]) -> dict[str, list[JourneyRun]]:
        found: dict[str, list[JourneyRun]] = {}
        for user_id in dict.fromkeys(user_ids):
            runs = sorted(self.active(tenant, user_id), key=lambda r: r.entered_at)
            if runs:
                found[user_id] = runs
        return found

    def latest_many(
        self, tenant: str, journeys: Sequence[str], user_ids: Sequence[str]
    ) -> dict[tuple[str, str], JourneyRun]:
        found: dict[tuple[str, str], JourneyRun] = {}
        for journey in dict.fromkeys(journeys):
            for user_id in dict.fromkeys(user_ids):
                run = self.latest(tenant, journey, user_id)
                if run is not None:
                    found[(journey, user_id)] = run
        return found

    def due(self, tenant: str, now: datetime, *, limit: int = 1000) -> list[JourneyRun]:
        runs = [
            r
            for r in self._runs.values()
            if r.tenant == tenant
            and r.status == RunStatus.ACTIVE
            and r.wake_at is not None
            and r.wake_at <= now
        ]
        runs.sort(key=lambda r: (r.wake_at or now, r.run_id))
        return [copy.deepcopy(r) for r in runs[:limit]]


class MemoryItemChangeStore:
    """The item-change queue in a list (see :class:`personify.messaging.item_updates`)."""

    def __init__(self) -> None:
        self._changes: dict[int, tuple[ItemChange, datetime | None]] = {}
        self._next = 1
        self._lock = threading.Lock()

    def record(self, changes: Sequence[ItemChange]) -> None:
        with self._lock:
            for change in changes:
                self._changes[self._next] = (change, None)
                self._next += 1

    def claim(self, now: datetime, *, limit: int, lease: timedelta) -> list[tuple[int, ItemChange]]:
        with self._lock:
            free = [
                (change_id, change)
                for change_id, (change, until) in sorted(self._changes.items())
                if until is None or until <= now
            ][:limit]
            for change_id, change in free:
                self._changes[change_id] = (change, now + lease)
            return free

    def done(self, ids: Sequence[int]) -> None:
        with self._lock:
            for change_id in ids:
                self._changes.pop(change_id, None)

    def prune(self, before: datetime) -> int:
        with self._lock:
            old = [k for k, (change, _) in self._changes.items() if change.at < before]
            for change_id in old:
                del self._changes[change_id]
            return len(old)


class MemoryItemViewStore:
    """Latest view time per (tenant, item, person)."""

    def __init__(self) -> None:
        self._views: dict[tuple[str, str, str], datetime] = {}
        self._backfilled: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def record_views(self, tenant: str, views: Sequence[tuple[str, str, datetime]]) -> None:
        with self._lock:
            for item_id, user_id, at in views:
                key = (tenant, item_id, user_id)
                seen = self._views.get(key)
                if seen is None or at > seen:
                    self._views[key] = at

    def viewers(self, tenant: str, item_id: str, since: datetime, *, limit: int) -> list[str]:
        with self._lock:
            found = [
                (at, user_id)
                for (t, i, user_id), at in self._views.items()
                if t == tenant and i == item_id and at >= since
            ]
        found.sort(key=lambda view: (-view[0].timestamp(), view[1]))
        return [user_id for _, user_id in found[:limit]]

    def prune(self, before: datetime) -> int:
        with self._lock:
            old = [key for key, at in self._views.items() if at < before]
            for key in old:
                del self._views[key]
            return len(old)

    def delete_user(self, tenant: str, user_id: str) -> int:
        with self._lock:
            gone = [k for k in self._views if k[0] == tenant and k[2] == user_id]
            for key in gone:
                del self._views[key]
            return len(gone)

    def backfilled(self, tenant: str) -> bool:
        return tenant in self._backfilled

    def mark_backfilled(self, tenant: str, at: datetime) -> None:
        self._backfilled[tenant] = at
