"""Identity operations shared by the users routes and the Segment endpoint: merge an anonymous id
into a user, merge profile traits, erase a user."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from personify.api.erasure_check import CachedErasureCheck
from personify.api.schemas.privacy import ErasureReceipt
from personify.domain.errors import Conflict, Erased
from personify.domain.users import Profile, User
from personify.storage.registry import Stores


def refuse_erased(check: CachedErasureCheck, tenant: str, user_id: str) -> None:
    """Erased (410) if ``user_id`` was erased: replayed data must not re-create a person."""
    if check(tenant, user_id):
        raise Erased(
            f"user {user_id!r} was erased; data for this id is not accepted again",
            field="user_id",
            accepted="the id of a user who has not been erased",
        )


def link_anonymous(stores: Stores, tenant: str, user_id: str, anonymous_id: str) -> User:
    """Merge ``anonymous_id`` into ``user_id``: its past events count for the user from now on,
    and it joins the user's ``anonymous_ids``. Creates a bare user when none exists yet;
    Conflict when the anonymous id already belongs to another user."""
    owner = stores.users.get_by_anonymous(tenant, anonymous_id)
    if owner is not None and owner.user_id != user_id:
        raise Conflict(
            f"anonymous id {anonymous_id!r} is already linked to another user",
            field="anonymous_id",
            accepted="an anonymous id not linked to a different user",
        )
    user = stores.users.get(tenant, user_id)
    if user is None:
        user = stores.users.upsert(tenant, [User(user_id=user_id, anonymous_ids=[anonymous_id])])[0]
    elif anonymous_id not in user.anonymous_ids:
        user = stores.users.upsert(
            tenant, [user.model_copy(update={"anonymous_ids": [*user.anonymous_ids, anonymous_id]})]
        )[0]
    stores.events.link_anonymous(tenant, anonymous_id, user_id)
    return user


def merge_traits(
    stores: Stores,
    tenant: str,
    user_id: str,
    profile: Mapping[str, Any],
    properties: Mapping[str, Any],
) -> User:
    """Create or update ``user_id`` with the given profile fields and properties, keeping every
    field not mentioned (Segment ``identify`` / ``group`` semantics)."""
    user = stores.users.get(tenant, user_id)
    if user is None:
        user = User(user_id=user_id)
    merged_profile = {**user.profile.model_dump(exclude_none=True), **profile}
    candidate = User.model_validate(
        {
            **user.model_dump(exclude={"profile", "properties"}),
            "profile": Profile.model_validate(merged_profile),
            "properties": {**user.properties, **properties},
        }
    )
    return stores.users.upsert(tenant, [candidate])[0]


def erase_user(
    stores: Stores, check: CachedErasureCheck, tenant: str, user_id: str
) -> ErasureReceipt:
    """Delete the profile, every event (including those under linked anonymous ids) and consent
    records, and record a tombstone so replayed data cannot re-create the user."""
    user = stores.users.get(tenant, user_id)
    anonymous_ids = list(user.anonymous_ids) if user is not None else []
    receipt_id = uuid.uuid4().hex
    stores.erasures.record(
        tenant, stores.erasures.user_id_hash(tenant, user_id), datetime.now(UTC), receipt_id
    )
    check.mark_erased(tenant, user_id)
    events_deleted = stores.events.delete_user(tenant, user_id, anonymous_ids)
    consents_deleted = stores.consents.delete_user(tenant, user_id)
    profile_deleted = stores.users.delete(tenant, user_id)
    return ErasureReceipt(
        user_id=user_id,
        receipt_id=receipt_id,
        profile_deleted=profile_deleted,
        events_deleted=events_deleted,
        consents_deleted=consents_deleted,
    )
