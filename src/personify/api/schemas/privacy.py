"""The receipt of a user deletion (erasure)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from personify.privacy.erasure import ErasureResult


class ErasureReceipt(BaseModel):
    """What ``DELETE /v1/users/{user_id}`` removed; ``receipt_id`` identifies the tombstone.

    ``model_status``: ``subtracted`` (the served model no longer reflects the person),
    ``not_in_model``, ``no_model``, ``no_influence_index`` (waits for the next retrain) or
    ``failed``; ``retrain_pending`` says whether some model influence waits for a retrain;
    ``model_versions_rewritten`` / ``model_versions_deleted`` name the other versions on disk
    that held the person (rewritten in place without them, or deleted).
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
    model_versions_rewritten: list[str] = Field(
        default_factory=list,
        description="other model versions on disk that held the person, rewritten without them",
    )
    model_versions_deleted: list[str] = Field(
        default_factory=list,
        description="model versions without an influence index to clean them, deleted",
    )
    seconds: float = 0.0


def receipt_of(result: ErasureResult) -> ErasureReceipt:
    """The API receipt of one erasure."""
    return ErasureReceipt(
        user_id=result.subject,
        receipt_id=result.receipt_id,
        erased_at=result.erased_at,
        profile_deleted=result.profile_deleted,
        events_deleted=result.events_deleted,
        consents_deleted=result.consents_deleted,
        preferences_deleted=result.preferences_deleted,
        online_state_forgotten=result.online_subjects_forgotten,
        model_status=result.model.status,
        model_version=result.model.version,
        model_neighbours_exact=result.model.exact_neighbours,
        retrain_pending=result.retrain_pending,
        model_versions_rewritten=list(result.model.versions_rewritten),
        model_versions_deleted=list(result.model.versions_deleted),
        seconds=round(result.seconds, 4),
    )
