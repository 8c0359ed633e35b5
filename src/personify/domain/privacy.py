"""Privacy records: a person's declared preferences and an audit entry of personal-data access.

Pure data; the ports live in ``personify.privacy`` and the SQL adapters in
``personify.storage.sql.privacy_*``.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from personify.domain._fields import Identifier, Label, Name, ShortText
from personify.domain.limits import MAX_LIST_LENGTH

MAX_MUTED = 1_000
"""How many items, categories or people one person may mute."""


class Preferences(BaseModel):
    """What a person told us about themselves: declared interests and what to never show.

    ``muted_people`` are user ids whose person item and authored items are hidden.
    """

    model_config = ConfigDict(extra="forbid")

    declared_interests: list[Label] = Field(default_factory=list, max_length=MAX_LIST_LENGTH)
    muted_items: list[Identifier] = Field(default_factory=list, max_length=MAX_MUTED)
    muted_categories: list[Label] = Field(default_factory=list, max_length=MAX_MUTED)
    muted_people: list[Identifier] = Field(default_factory=list, max_length=MAX_MUTED)
    updated_at: datetime | None = None

    def is_empty(self) -> bool:
        return not (
            self.declared_interests or self.muted_items or self.muted_categories
            or self.muted_people
        )


class AuditEntry(BaseModel):
    """One read or change of personal data through an admin endpoint.

    ``subject`` is the pseudonym of the person concerned (never the raw id), so the log itself
    holds no personal data yet answers "who looked at this person" for a known id.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: Name
    key_id: ShortText
    action: Name
    resource: ShortText
    subject: ShortText | None = None
    status: int = 200
    at: datetime
    entry_id: int | None = None
