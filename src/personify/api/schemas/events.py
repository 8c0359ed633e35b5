"""Event bodies: the domain ``Event`` is both the request and the public shape."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from personify.domain.events import Event

__all__ = ["Event", "EventAck", "EventList"]


class EventAck(BaseModel):
    """Answer to ``POST /v1/events``: stored now, or a duplicate of an already stored event."""

    event_id: str
    status: Literal["stored", "duplicate"]


class EventList(BaseModel):
    events: list[Event]
