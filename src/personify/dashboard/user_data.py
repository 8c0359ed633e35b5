"""A person's data as the Users page exports and erases it.

Erasure does what the API's ``DELETE /v1/users/{id}`` does (profile, events including linked
anonymous ids, consents, a tombstone so replayed data cannot re-create them) and also forgets the
person's online state; it moves to ``personify.privacy`` when that package lands.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from personify.domain.events import Event
from personify.storage.online.port import OnlineState
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


def erase_user(
    stores: Stores,
    tenant: str,
    user_id: str,
    *,
    state: OnlineState | None = None,
    mark_erased: Any = None,
) -> ErasureOutcome:
    """Delete everything stored about ``user_id`` and leave a tombstone; ``mark_erased`` is the
    application's erasure cache (``app.state.erasure_check.mark_erased``) when there is one."""
    user = stores.users.get(tenant, user_id)
    anonymous_ids = list(user.anonymous_ids) if user is not None else []
    receipt_id = uuid.uuid4().hex
    stores.erasures.record(
        tenant, stores.erasures.user_id_hash(tenant, user_id), datetime.now(UTC), receipt_id
    )
    if mark_erased is not None:
        mark_erased(tenant, user_id)
    events_deleted = stores.events.delete_user(tenant, user_id, anonymous_ids)
    consents_deleted = stores.consents.delete_user(tenant, user_id)
    profile_deleted = stores.users.delete(tenant, user_id)
    if state is not None:
        state.forget_user(tenant, user_id)
        for anonymous_id in anonymous_ids:
            state.forget_user(tenant, f"anon:{anonymous_id}")
    return ErasureOutcome(receipt_id, profile_deleted, events_deleted, consents_deleted)
