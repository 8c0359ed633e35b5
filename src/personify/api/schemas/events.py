"""Event bodies: the domain ``Event`` is both the request and the public shape."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from personify.domain.events import Event

__all__ = ["Event", "EventAck", "EventIn", "EventList"]

TIMESTAMP_DEFAULTED = "timestamp absent: set to the server's receive time"


class EventIn(Event):
    """An event as sent to ``/v1/events``: ``timestamp`` may be left out (the server's receive
    time is used, and the answer says so)."""

    timestamp: datetime = Field(  # type: ignore[assignment]
        default=None,
        description="when it happened (ISO 8601); absent = the server's receive time",
    )


class EventAck(BaseModel):
    """Answer to ``POST /v1/events``: stored now, or a duplicate of an already stored event."""

    event_id: str
    status: Literal["stored", "duplicate"]
    timestamp: datetime | None = Field(
        default=None, description="the receive time used when the event had no timestamp"
    )
    notes: list[str] = Field(default_factory=list)


class EventList(BaseModel):
    events: list[Event]
