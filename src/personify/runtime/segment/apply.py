"""Carry out a mapped Segment batch: store the events through the ingestor, then merge profiles
and identities. Every failure is a per-message rejection; nothing fails the batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from pydantic import ValidationError

from personify.domain.errors import Forbidden, PersonifyError
from personify.domain.person_tokens import PersonGuard
from personify.ingestion import EventIngestor, Rejection
from personify.ingestion.validation import rejection_from_validation_error
from personify.runtime.erasure_check import CachedErasureCheck
from personify.runtime.identity import link_anonymous, merge_traits
from personify.runtime.segment.mapping import MappedBatch, ProfileUpdate
from personify.serving.repetition import ShownLog
from personify.storage.online.port import OnlineState
from personify.storage.registry import Stores


def apply_batch(
    mapped: MappedBatch,
    *,
    tenant: str,
    stores: Stores,
    ingestor: EventIngestor,
    erased: CachedErasureCheck,
    message_count: int,
    state: OnlineState | None = None,
    guard: PersonGuard | None = None,
    shown: ShownLog | None = None,
) -> dict[str, Any]:
    """Apply ``mapped`` for ``tenant``; returns the response body (Segment's ``success`` plus
    Personify's counts and rejections by message index). Without a ``guard`` that trusts the
    key, an existing person's profile and identity change only with a valid person token for
    them (a new person may be created)."""
    rejected = list(mapped.rejected)
    # the ingestor prefetches the events' identities itself; profiles and aliases here
    erased.prefetch(
        tenant,
        [
            *(update.user_id for update in mapped.profiles),
            *(alias.user_id for alias in mapped.aliases),
        ],
    )
    result = ingestor.ingest(tenant, mapped.events) if mapped.events else None
    if result is not None:
        rejected.extend(replace(r, index=mapped.origins[r.index]) for r in result.rejected)
    created: set[str] = set()  # new people of this batch: its later messages may amend them
    for update in mapped.profiles:
        problem = _guarded(update.index, stores, tenant, update.user_id, update.person_token,
                           guard, created) or _attempt(
            update.index,
            tenant,
            update.user_id,
            erased,
            partial(_apply_profile, stores, tenant, update, state, shown),
        )
        if problem is not None:
            rejected.append(problem)
    for alias in mapped.aliases:
        merge = partial(
            link_anonymous, stores, tenant, alias.user_id, alias.anonymous_id, state=state,
            shown=shown,
        )
        problem = _guarded(alias.index, stores, tenant, alias.user_id, alias.person_token,
                           guard, created)
        problem = problem or _attempt(alias.index, tenant, alias.user_id, erased, merge)
        if problem is not None:
            rejected.append(problem)
    rejected.sort(key=lambda r: r.index)
    bad_messages = {r.index for r in rejected}
    return {
        "success": True,
        "accepted": message_count - len(bad_messages),
        "stored": len(result.stored) if result else 0,
        "duplicates": len(result.duplicates) if result else 0,
        "rejected": [r.to_dict() for r in rejected],
    }


def _apply_profile(
    stores: Stores, tenant: str, update: ProfileUpdate, state: OnlineState | None = None,
    shown: ShownLog | None = None,
) -> None:
    """``identify`` / ``group``: merge traits, then the anonymous id when one came along."""
    merge_traits(stores, tenant, update.user_id, update.profile, update.properties)
    if update.anonymous_id:
        link_anonymous(stores, tenant, update.user_id, update.anonymous_id, state=state,
                       shown=shown)


def _guarded(
    index: int, stores: Stores, tenant: str, user_id: str, token: str | None,
    guard: PersonGuard | None, created: set[str],
) -> Rejection | None:
    """A rejection when the key may not change ``user_id``, a person who existed before this
    batch (None: go on)."""
    if guard is None or guard.trusted or user_id in created:
        return None
    if stores.users.get(tenant, user_id) is None:
        created.add(user_id)
        return None
    try:
        guard.check(user_id, token)
    except Forbidden as exc:
        return Rejection(index, exc.code, "context.person_token", exc.message, exc.accepted,
                         user_id)
    return None


def _attempt(
    index: int, tenant: str, user_id: str, erased: CachedErasureCheck, action: Callable[[], object]
) -> Rejection | None:
    """Run ``action`` for one message; its failure as a Rejection (None when it worked)."""
    if erased(tenant, user_id):
        return Rejection(
            index,
            "erased",
            "userId",
            f"user {user_id!r} was erased",
            "the id of a user who has not been erased",
            user_id,
        )
    try:
        action()
    except ValidationError as exc:
        found = rejection_from_validation_error(index, exc, user_id)
        return replace(found, field=f"traits.{found.field}" if found.field else "traits")
    except PersonifyError as exc:
        return Rejection(index, exc.code, exc.field, exc.message, exc.accepted, user_id)
    return None
