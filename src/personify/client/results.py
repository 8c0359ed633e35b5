"""What the client's calls return besides domain records: ingestion and bulk outcomes, receipts."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from personify.domain.consents import ConsentRecord
from personify.domain.keys import ApiKey


@dataclass(frozen=True)
class RejectedRecord:
    """One record the server refused: its index in what was sent, the field, why, what is
    accepted."""

    index: int
    code: str
    message: str
    field: str | None = None
    accepted: str | None = None
    id: str | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any], offset: int = 0) -> RejectedRecord:
        return cls(
            index=int(body["index"]) + offset,
            code=str(body["code"]),
            message=str(body.get("message", "")),
            field=body.get("field"),
            accepted=body.get("accepted"),
            id=body.get("id"),
        )


@dataclass
class IngestResult:
    """Outcome of sending events: ``accepted = stored + duplicates``."""

    accepted: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: list[RejectedRecord] = field(default_factory=list)

    def merge(self, body: dict[str, Any], offset: int) -> None:
        """Add one batch answer; its rejection indexes are shifted by ``offset``."""
        self.accepted += int(body["accepted"])
        self.stored += int(body["stored"])
        self.duplicates += int(body["duplicates"])
        self.rejected.extend(RejectedRecord.from_json(r, offset) for r in body["rejected"])


@dataclass(frozen=True)
class EventAck:
    event_id: str
    status: str
    """``stored``, or ``duplicate`` when the event id was already stored."""


@dataclass
class BulkResult:
    """Outcome of a bulk upsert of users or items."""

    accepted: int = 0
    ids: list[str] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)

    def merge(self, body: dict[str, Any], offset: int) -> None:
        self.accepted += int(body["accepted"])
        self.ids.extend(body["ids"])
        self.rejected.extend(RejectedRecord.from_json(r, offset) for r in body["rejected"])


@dataclass(frozen=True)
class ErasureReceipt:
    """What an erasure removed (see ``docs/privacy.md``); unknown fields from newer servers are
    ignored."""

    user_id: str
    receipt_id: str
    profile_deleted: bool
    events_deleted: int
    consents_deleted: int
    erased_at: str | None = None
    preferences_deleted: bool = False
    online_state_forgotten: int = 0
    model_status: str = "no_model"
    model_version: str | None = None
    model_neighbours_exact: bool = False
    retrain_pending: bool = False
    seconds: float = 0.0
    model_versions_rewritten: list[str] = field(default_factory=list)
    model_versions_deleted: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ErasureReceipt:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in body.items() if k in known})


@dataclass(frozen=True)
class Consents:
    """The latest record per purpose, and every record."""

    current: dict[str, ConsentRecord]
    history: list[ConsentRecord]


@dataclass(frozen=True)
class CreatedKey:
    """A new API key and its secret (shown this once)."""

    key: ApiKey
    secret: str
