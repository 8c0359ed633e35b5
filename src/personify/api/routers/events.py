"""``/v1/events``: ingest one event or a batch (``ingest`` scope); list a user's events (admin).

The batch body is parsed here with orjson and each event is validated on its own, so one bad
event is reported by index and never fails the good ones beside it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from personify.api.bodies import read_json
from personify.api.deps import (
    Access,
    AdminKey,
    IngestAccess,
    IngestorDep,
    SettingsDep,
    StoresDep,
)
from personify.api.limits import too_large
from personify.api.openapi import documented_body
from personify.api.responses import JSONBody
from personify.api.routing import KeyFirstRoute
from personify.api.schemas.bulk import records_of
from personify.api.schemas.common import BatchResultOut, QueryDateTime
from personify.api.schemas.events import TIMESTAMP_DEFAULTED, EventAck, EventIn, EventList
from personify.domain import limits
from personify.domain._fields import Identifier, Name
from personify.domain.errors import Erased, InvalidInput, LimitExceeded, PersonifyError
from personify.ingestion import BatchResult, EventIngestor, Rejection
from personify.runtime.decision_points import DECISION_ID_PREFIX
from personify.settings import Settings

router = APIRouter(tags=["events"], route_class=KeyFirstRoute)


def ingest_raw(
    ingestor: EventIngestor, tenant: str, raws: list[Any], access: Access | None = None
) -> BatchResult:
    """Stamp the server receive time (a client cannot set it) and use it as the ``timestamp`` of
    events without one (``timestamps_defaulted`` lists their indexes), then ingest event by
    event (the ingestor answers the erasure question for the whole batch in one query)."""
    now = datetime.now(UTC)
    for raw in raws:
        if isinstance(raw, dict):
            raw["received_at"] = now
            if raw.get("timestamp") is None:  # absent: when the server received it
                raw["timestamp"] = now
                raw[_DEFAULTED] = True
    defaulted = [i for i, raw in enumerate(raws) if isinstance(raw, dict) and raw.pop(_DEFAULTED,
                                                                                        False)]
    foreign = _foreign_events(access, raws)
    if foreign:
        kept = [i for i in range(len(raws)) if i not in foreign]
        result = ingestor.ingest(tenant, [raws[i] for i in kept])
        result.rejected = sorted(
            [replace(r, index=kept[r.index]) for r in result.rejected]
            + [Rejection(index=i, code="forbidden", field="user_id", message=message,
                         accepted=VISITOR_ACCEPTED) for i, message in foreign.items()],
            key=lambda r: r.index,
        )
    else:
        result = ingestor.ingest(tenant, raws)
    result.timestamps_defaulted = defaulted
    result.warnings = [
        {"index": i, "field": "item_id", "message": NO_ACTION_ID}
        for i, raw in enumerate(raws)
        if isinstance(raw, dict) and _quotes_decision(raw) and not raw.get("item_id")
    ]
    return result


VISITOR_ACCEPTED = (
    "events whose user_id / anonymous_id are the current visitor's (X-Personify-Anonymous-Id; "
    "X-Personify-User-Id with a person token)"
)


def _foreign_events(access: Access | None, raws: list[Any]) -> dict[int, str]:
    """Index -> why, for each event a browser key may not send (another visitor's)."""
    if access is None or access.visitor is None:
        return {}
    visitor = access.visitor
    found = {}
    for i, raw in enumerate(raws):
        message = visitor.foreign_event(raw)
        if message is not None:
            found[i] = message
    return found


NO_ACTION_ID = (
    "the event quotes a decision (recommendation_id dec-...) without the chosen action's id in "
    "item_id: no bandit reward is attributed"
)


def _quotes_decision(raw: dict[str, Any]) -> bool:
    rid = raw.get("recommendation_id")
    return isinstance(rid, str) and rid.startswith(DECISION_ID_PREFIX)


_DEFAULTED = "__timestamp_defaulted"


def _error_of(rejection: Rejection) -> PersonifyError:
    kinds: dict[str, type[PersonifyError]] = {"erased": Erased, "limit_exceeded": LimitExceeded}
    cls = kinds.get(rejection.code, InvalidInput)
    accepted = rejection.accepted or "a value within the documented limits (docs/api.md)"
    return cls(rejection.message, field=rejection.field, accepted=accepted)


@router.post(
    "/v1/events",
    response_model=EventAck,
    response_model_exclude_defaults=True,
    summary="Ingest one event (a duplicate event id is acknowledged, not stored twice)",
    openapi_extra=documented_body(EventIn, many=False),
)
async def post_event(
    request: Request, access: IngestAccess, ingestor: IngestorDep, settings: SettingsDep,
) -> EventAck:
    body = await read_json(request, max_bytes=settings.max_request_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be one event object", field="body",
                           accepted="a JSON object with the documented event fields")
    result = await run_in_threadpool(ingest_raw, ingestor, access.tenant, [body], access)
    if result.rejected:
        raise _error_of(result.rejected[0])
    defaulted = body["timestamp"] if result.timestamps_defaulted else None
    notes = [TIMESTAMP_DEFAULTED] if defaulted is not None else []
    notes += [w["message"] for w in result.warnings]
    if result.stored:
        return EventAck(event_id=result.stored[0], status="stored", timestamp=defaulted,
                        notes=notes)
    return EventAck(event_id=result.duplicates[0], status="duplicate", timestamp=defaulted,
                    notes=notes)


@router.post(
    "/v1/events/batch",
    response_model=BatchResultOut,
    responses={207: {"model": BatchResultOut, "description": "some events were rejected"}},
    summary=f"Ingest up to {limits.MAX_BATCH_EVENTS} events; bad events are reported by index",
    openapi_extra=documented_body(EventIn, many=True, key="events"),
)
async def post_events(
    request: Request, access: IngestAccess, ingestor: IngestorDep, settings: SettingsDep,
) -> Response:
    return await ingest_batch(request, access, ingestor, settings)


async def ingest_batch(
    request: Request, access: Access, ingestor: EventIngestor, settings: Settings
) -> Response:
    """A batch body (``{"events": [...]}``) ingested for ``access``: a browser key's batch is
    at most :data:`BROWSER_MAX_EVENTS` events and :data:`BROWSER_MAX_BYTES` bytes."""
    browser = access.visitor is not None
    max_bytes = min(settings.max_request_bytes, BROWSER_MAX_BYTES) if browser else (
        settings.max_request_bytes)
    if len(await request.body()) > max_bytes:
        raise too_large(max_bytes)
    body = await read_json(request, max_bytes=max_bytes)
    limit = BROWSER_MAX_EVENTS if browser else limits.MAX_BATCH_EVENTS
    raws = records_of(body, key="events", limit=limit)
    result = await run_in_threadpool(ingest_raw, ingestor, access.tenant, raws, access)
    return JSONBody(result.to_dict(), status_code=207 if result.rejected else 200)


BROWSER_MAX_EVENTS = 100
"""Most events in one batch from a browser key (the snippet sends at most 20)."""
BROWSER_MAX_BYTES = 256 * 1024
"""Largest batch body from a browser key."""


@router.get(
    "/v1/users/{user_id}/events",
    response_model=EventList,
    tags=["users"],
    summary="A user's events (and those of their linked anonymous ids), newest first",
)
def user_events(
    user_id: Identifier,
    key: AdminKey,
    stores: StoresDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    before: QueryDateTime | None = None,
    types: Annotated[list[Name] | None, Query(alias="type")] = None,
) -> EventList:
    events = stores.events.for_user(key.tenant, user_id, limit=limit, before=before, types=types)
    return EventList(events=events)


