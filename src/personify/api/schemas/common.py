"""Shapes shared by several resources: per-record rejections and batch / bulk outcomes."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from personify.ingestion import Rejection

_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def _iso_text(value: Any) -> Any:
    """A query parameter's date-time is ISO 8601 text, not a number of seconds (lax mode reads
    ``since=0.5`` as half a second after 1970)."""
    if isinstance(value, str) and _NUMBER.match(value):
        raise PydanticCustomError(
            "datetime_type", "expected an ISO 8601 date-time, got a number: {value}",
            {"value": value},
        )
    return value


QueryDateTime = Annotated[datetime, BeforeValidator(_iso_text)]
"""A date-time query parameter: ISO 8601 text only (refused, naming the parameter, when a
number is given)."""


class RejectionOut(BaseModel):
    """One rejected record: its position in the request, the field, why, and what is accepted."""

    index: int
    code: str
    field: str | None = None
    message: str
    accepted: str | None = None
    id: str | None = Field(default=None, description="the record's id, when it had one")

    @classmethod
    def of(cls, rejection: Rejection) -> RejectionOut:
        return cls(**rejection.to_dict())


class BatchResultOut(BaseModel):
    """Outcome of an event batch: ``accepted = stored + duplicates``; duplicates were already
    stored (a retry) and are acknowledged, not stored twice."""

    accepted: int
    stored: int
    duplicates: int
    rejected: list[RejectionOut] = Field(default_factory=list)
    timestamps_defaulted: list[int] = Field(
        default_factory=list,
        description="indexes of events without a timestamp: the server's receive time was used",
    )
    warnings: list[dict[str, Any]] = Field(
        default_factory=list,
        description="stored events that will not do what they seem meant for (index, field, "
        "message), e.g. a bandit reward without the action id",
    )


class BulkResultOut(BaseModel):
    """Outcome of a bulk upsert of users or items."""

    accepted: int
    ids: list[str] = Field(default_factory=list, description="ids upserted, in request order")
    rejected: list[RejectionOut] = Field(default_factory=list)


class Page(BaseModel):
    """Paging parameters echoed back with a listing."""

    limit: int
    offset: int
