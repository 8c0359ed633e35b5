"""The receipt of a user deletion (erasure)."""

from __future__ import annotations

from pydantic import BaseModel


class ErasureReceipt(BaseModel):
    """What ``DELETE /v1/users/{user_id}`` removed; ``receipt_id`` identifies the tombstone."""

    user_id: str
    receipt_id: str
    profile_deleted: bool
    events_deleted: int
    consents_deleted: int
