"""``/v1/events``: ingest one event or a batch (``ingest`` scope); list a user's events (admin).

The batch body is parsed here with orjson and each event is validated on its own, so one bad
event is reported by index and never fails the good ones beside it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from personify.api.bodies import read_json
from personify.api.deps import (
    AdminKey,
    IngestKey,
    IngestorDep,
    SettingsDep,
    StoresDep,
)
from personify.api.openapi import documented_body
from personify.api.responses import JSONBody
from personify.api.routing import KeyFirstRoute
from personify.api.schemas.bulk import records_of
from personify.api.schemas.common import BatchResultOut
from personify.api.schemas.events import TIMESTAMP_DEFAULTED, EventAck, EventIn, EventList
from personify.domain import limits
from personify.domain._fields import Identifier, Name
from personify.domain.errors import Erased, InvalidInput, LimitExceeded, PersonifyError
from personify.ingestion import BatchResult, EventIngestor, Rejection
from personify.runtime.decision_points import DECISION_ID_PREFIX

router = APIRouter(tags=["events"], route_class=KeyFirstRoute)


def ingest_raw(
    ingestor: EventIngestor, tenant: str, raws: list[Any]
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
    result = ingestor.ingest(tenant, raws)
    result.timestamps_defaulted = defaulted
    result.warnings = [
        {"index": i, "field": "item_id", "message": NO_ACTION_ID}
        for i, raw in enumerate(raws)
        if isinstance(raw, dict) and _quotes_decision(raw) and not raw.get("item_id")
    ]
    return result


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
    request: Request, key: IngestKey, ingestor: IngestorDep, settings: SettingsDep,
) -> EventAck:
    body = await read_json(request, max_bytes=settings.max_request_bytes)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be one event object", field="body",
                           accepted="a JSON object with the documented event fields")
    result = await run_in_threadpool(ingest_raw, ingestor, key.tenant, [body])
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
    request: Request, key: IngestKey, ingestor: IngestorDep, settings: SettingsDep,
) -> Response:
    body = await read_json(request, max_bytes=settings.max_request_bytes)
    raws = records_of(body, key="events", limit=limits.MAX_BATCH_EVENTS)
    result = await run_in_threadpool(ingest_raw, ingestor, key.tenant, raws)
    return JSONBody(result.to_dict(), status_code=207 if result.rejected else 200)


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
    before: datetime | None = None,
    types: Annotated[list[Name] | None, Query(alias="type")] = None,
) -> EventList:
    events = stores.events.for_user(key.tenant, user_id, limit=limit, before=before, types=types)
    return EventList(events=events)


