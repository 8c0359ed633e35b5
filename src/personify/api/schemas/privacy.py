"""The receipt of a user deletion (erasure)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ErasureReceipt(BaseModel):
    """What ``DELETE /v1/users/{user_id}`` removed; ``receipt_id`` identifies the tombstone.

    ``model_status``: ``subtracted`` (the served model no longer reflects the person),
    ``not_in_model``, ``no_model``, ``no_influence_index`` (waits for the next retrain) or
    ``failed``; ``retrain_pending`` says whether some model influence waits for a retrain.
    """

    user_id: str
    receipt_id: str
    erased_at: datetime | None = None
    profile_deleted: bool
    events_deleted: int
    consents_deleted: int
    preferences_deleted: bool = False
    online_state_forgotten: int = Field(0, description="online-state subjects forgotten")
    model_status: str = "no_model"
    model_version: str | None = None
    model_neighbours_exact: bool = False
    retrain_pending: bool = False
    seconds: float = 0.0
