"""``/v1/event-types``: the built-in event types and the tenant's own, declared without a
restart (``admin`` to declare or delete, ``ingest`` to list). Events of a declared type are
accepted by ``POST /v1/events``, imports and the Segment endpoint from the next request (other
processes within seconds), and weigh what the declaration says at the next training."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from personify.api.deps import AdminKey, IngestKey, RuntimeDep
from personify.api.routing import KeyFirstRoute
from personify.data.events import DEFAULT_WEIGHTS
from personify.domain.events import (
    BUILTIN_EVENT_TYPES,
    ITEM_EVENT_TYPES,
    EventTypeDefinition,
    check_custom_type_name,
)

router = APIRouter(prefix="/v1/event-types", tags=["events"], route_class=KeyFirstRoute)


class EventTypeOut(BaseModel):
    name: str
    builtin: bool = Field(description="built-in types cannot be redefined")
    description: str | None = None
    weight: float | None = Field(
        description="training weight of one event; null = stored, not used as feedback "
        "(built-in rating: derived from the value)"
    )
    needs_item: bool


class EventTypesOut(BaseModel):
    event_types: list[EventTypeOut]


def _declared_out(name: str, definition: EventTypeDefinition) -> EventTypeOut:
    return EventTypeOut(name=name, builtin=False, description=definition.description,
                        weight=definition.weight, needs_item=definition.needs_item)


@router.get("", response_model=EventTypesOut, summary="Every event type the tenant can send")
def list_event_types(key: IngestKey, runtime: RuntimeDep, builtin: bool = True) -> EventTypesOut:
    """The tenant's declared types, the installation's configured custom types and (unless
    ``builtin=false``) the built-in types with their default training weights."""
    out: list[EventTypeOut] = []
    declared = runtime.event_types.declared(key.tenant)
    for name in sorted(declared):
        out.append(_declared_out(name, declared[name]))
    for name in sorted(set(runtime.settings.custom_event_types) - set(declared)):
        out.append(EventTypeOut(name=name, builtin=False, description="configured in settings "
                                "(custom_event_types)", weight=None, needs_item=False))
    if builtin:
        for name in sorted(BUILTIN_EVENT_TYPES):
            out.append(EventTypeOut(name=name, builtin=True, weight=DEFAULT_WEIGHTS.get(name),
                                    needs_item=name in ITEM_EVENT_TYPES))
    return EventTypesOut(event_types=out)


@router.get("/{name}", response_model=EventTypeOut, summary="One declared event type")
def get_event_type(name: str, key: IngestKey, runtime: RuntimeDep) -> EventTypeOut:
    return _declared_out(name, runtime.event_types.get(key.tenant, name))


@router.put("/{name}", response_model=EventTypeOut,
            summary="Declare (or redefine) one of the tenant's own event types",
            responses={201: {"model": EventTypeOut, "description": "a new type was declared"}})
def put_event_type(
    name: str, body: EventTypeDefinition, key: AdminKey, runtime: RuntimeDep, response: Response
) -> EventTypeOut:
    """Idempotent: the same body again changes nothing. 201 when the type is new."""
    check_custom_type_name(name)
    if runtime.event_types.put(key.tenant, name, body):
        response.status_code = 201
    return _declared_out(name, body)


@router.delete("/{name}", summary="Stop accepting new events of a declared type")
def delete_event_type(name: str, key: AdminKey, runtime: RuntimeDep) -> dict[str, Any]:
    """Events already stored keep their type; the next training ignores them."""
    runtime.event_types.delete(key.tenant, name)
    return {"deleted": name}
