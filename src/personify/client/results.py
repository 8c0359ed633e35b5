"""What the client's calls return besides domain records: ingestion and bulk outcomes, receipts."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from personify.domain.consents import ConsentRecord
from personify.domain.items import Item
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
    notes: dict[str, Any] = field(default_factory=dict)
    """Any other field of the answer (what the server filled in, for example)."""

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> EventAck:
        rest = {k: v for k, v in body.items() if k not in ("event_id", "status")}
        return cls(event_id=str(body["event_id"]), status=str(body["status"]), notes=rest)


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


class _Answer(BaseModel):
    """An answer of the server: unknown fields from a newer server are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class RecommendedItem(_Answer):
    item_id: str
    score: float
    source: str
    """The candidate source that contributed most."""
    explanation: str = ""
    """Why, in the request's language (with ``explain=True``)."""
    reasons: list[dict[str, Any]] = Field(default_factory=list)
    item: Item | None = None
    """The catalogue record (absent with ``include_items=False``)."""


class Recommendations(_Answer):
    """An answer of the recommendation calls (recommend, similar, bought together, rerank,
    session)."""

    recommendation_id: str
    """Quote it as ``recommendation_id`` on later events to attribute clicks and buys."""
    personalized: bool
    model_version: str | None = None
    sources: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    items: list[RecommendedItem] = Field(default_factory=list)

    @property
    def item_ids(self) -> list[str]:
        return [i.item_id for i in self.items]


class RankedAction(_Answer):
    id: str
    rank: int
    propensity: float
    """Probability of this choice given the ranks above (log it for off-policy evaluation)."""
    score: float


class Decision(_Answer):
    """A decision point's choice: send ``decision_id`` as ``recommendation_id`` on the reward
    event."""

    decision_id: str
    point: str
    policy: str
    actions: list[RankedAction]
    warnings: list[str] = Field(default_factory=list)


class Assignment(_Answer):
    """The variant one visitor gets in one running experiment (``variant`` is None in the
    holdout)."""

    experiment: str
    layer: str
    variant: str | None
    holdout: bool = False
    payload: dict[str, Any] = Field(default_factory=dict)


class Assignments(_Answer):
    """A visitor's unit (the key assignment hashes, sticky across login) and its variants, at
    most one per layer."""

    unit: str
    assignments: list[Assignment] = Field(default_factory=list)


class Exposure(_Answer):
    """Whether this exposure was logged (only a unit's first one per experiment is)."""

    logged: bool
    experiment: str
    unit: str
    variant: str | None = None
