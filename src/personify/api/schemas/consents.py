"""Consent bodies: a new record in, the current state and the history out."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from personify.domain._fields import Name, ShortText
from personify.domain.consents import ConsentRecord, ConsentState


class ConsentCreate(BaseModel):
    """Body of ``POST /v1/users/{user_id}/consents``: one change for one purpose."""

    model_config = ConfigDict(extra="forbid")

    purpose: Name
    state: ConsentState
    source: ShortText = "api"
    text_version: ShortText | None = None
    expires_at: datetime | None = None

    def to_record(self, user_id: str) -> ConsentRecord:
        return ConsentRecord(user_id=user_id, **self.model_dump())


class ConsentsOut(BaseModel):
    """The latest unexpired record per purpose, and every record, oldest first."""

    user_id: str
    current: dict[str, ConsentRecord]
    history: list[ConsentRecord]
