"""A person's data as the Users page exports it, and the outcome of an erasure (the page erases
through the runtime, as the API's ``DELETE /v1/users/{id}`` does)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from personify.domain.events import Event
from personify.storage.registry import Stores

EXPORT_PAGE = 1_000
MAX_EXPORT_EVENTS = 1_000_000


def user_events(stores: Stores, tenant: str, user_id: str, *, limit: int) -> list[Event]:
    """Up to ``limit`` of the user's events, newest first, read page by page."""
    out: list[Event] = []
    before: datetime | None = None
    while len(out) < limit:
        page = stores.events.for_user(
            tenant, user_id, limit=min(EXPORT_PAGE, limit - len(out)), before=before
        )
        if not page:
            break
        seen = {e.event_id for e in out}
        out.extend(e for e in page if e.event_id not in seen)
        if len(page) < EXPORT_PAGE or before == page[-1].timestamp:
            break
        before = page[-1].timestamp
    return out


def export_user(stores: Stores, tenant: str, user_id: str) -> dict[str, Any]:
    """Profile, events and consent history of one person as JSON-ready data."""
    user = stores.users.get(tenant, user_id)
    events = user_events(stores, tenant, user_id, limit=MAX_EXPORT_EVENTS)
    consents = stores.consents.history(tenant, user_id)
    return {
        "user_id": user_id,
        "tenant": tenant,
        "exported_at": datetime.now(UTC).isoformat(),
        "profile": user.model_dump(mode="json") if user is not None else None,
        "events": [e.model_dump(mode="json", exclude_none=True) for e in events],
        "consents": [c.model_dump(mode="json", exclude_none=True) for c in consents],
    }


@dataclass(frozen=True)
class ErasureOutcome:
    receipt_id: str
    profile_deleted: bool
    events_deleted: int
    consents_deleted: int
