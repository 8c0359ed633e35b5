"""Consent records: append-only, one per change, per user and purpose."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from personify.domain._fields import Identifier, Name, ShortText


class Purpose(StrEnum):
    PERSONALIZATION = "personalization"
    PROFILING = "profiling"
    EMAIL_MARKETING = "email_marketing"
    PUSH_MARKETING = "push_marketing"


class ConsentState(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"


class ConsentRecord(BaseModel):
    """One change of one person's consent for one purpose. Records are never updated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: Identifier
    purpose: Name
    state: ConsentState
    source: ShortText = "api"
    text_version: ShortText | None = None
    expires_at: datetime | None = None
    recorded_at: datetime | None = None
    record_id: int | None = Field(default=None, description="assigned by the store")


def current_consents(
    history: Iterable[ConsentRecord], moment: datetime
) -> dict[str, ConsentRecord]:
    """Per purpose, the latest record made by ``moment``, unless it has expired by then (an
    expired latest record never falls back to an older one: no consent)."""
    latest: dict[str, ConsentRecord] = {}
    for record in history:
        if record.recorded_at is not None and record.recorded_at <= moment:
            latest[record.purpose] = record
    return {
        purpose: record
        for purpose, record in latest.items()
        if record.expires_at is None or record.expires_at > moment
    }
