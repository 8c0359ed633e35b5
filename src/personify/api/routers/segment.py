"""The Segment / RudderStack-compatible tracking endpoint, mounted under ``/segment`` so that
the official clients work unchanged with ``host="https://<personify>/segment"``.

Authentication is Segment's: HTTP Basic with the write key as user name (a Personify key with
the ``ingest`` scope); Bearer and X-API-Key work too. Answers are always 200 with
``{"success": true}`` plus per-message rejections, as the clients expect.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from personify.api.bodies import read_json
from personify.api.deps import (
    ErasureCheckDep,
    IngestorDep,
    SegmentKey,
    SettingsDep,
    StoresDep,
    person_guard_for,
    runtime_of,
)
from personify.api.responses import JSONBody
from personify.api.routing import KeyFirstRoute
from personify.api.schemas.bulk import records_of
from personify.domain import limits
from personify.domain.errors import InvalidInput
from personify.runtime.segment.apply import apply_batch
from personify.runtime.segment.mapping import SegmentMapper

router = APIRouter(prefix="/segment", tags=["segment"], route_class=KeyFirstRoute)

_SINGLE_CALLS = {
    "track": "t", "identify": "i", "page": "p", "screen": "s", "alias": "a", "group": "g",
}


def _with_batch_context(body: dict[str, Any], messages: list[Any]) -> list[Any]:
    """Batch-level ``context`` applies to messages that carry none of their own."""
    context = body.get("context")
    if not isinstance(context, dict):
        return messages
    for message in messages:
        if isinstance(message, dict) and not isinstance(message.get("context"), dict):
            message["context"] = context
    return messages


async def _handle(request: Request, key: SegmentKey, stores: StoresDep, ingestor: IngestorDep,
                  erased: ErasureCheckDep, settings: SettingsDep, call: str | None) -> Response:
    body = await read_json(request, max_bytes=settings.max_request_bytes)
    if call is None:
        messages = records_of(body, key="batch", limit=limits.MAX_BATCH_EVENTS)
        if isinstance(body, dict):
            messages = _with_batch_context(body, messages)
    elif isinstance(body, dict):
        messages = [body]
    else:
        raise InvalidInput(f"a {call} call takes one JSON object", field="body",
                           accepted="a Segment message object")
    runtime = runtime_of(request)
    mapper: SegmentMapper = runtime.segment_mapper
    mapped = mapper.map_batch(messages, default_type=call,
                              declared_types=runtime.event_types.declared(key.tenant))
    answer = await run_in_threadpool(
        lambda: apply_batch(mapped, tenant=key.tenant, stores=stores, ingestor=ingestor,
                            erased=erased, message_count=len(messages),
                            state=runtime.online_state, shown=runtime.engine.service.shown,
                            guard=person_guard_for(request, key))
    )
    return JSONBody(answer)


def _endpoint(call: str | None) -> Any:
    async def endpoint(request: Request, key: SegmentKey, stores: StoresDep,
                       ingestor: IngestorDep, erased: ErasureCheckDep,
                       settings: SettingsDep) -> Response:
        return await _handle(request, key, stores, ingestor, erased, settings, call)

    endpoint.__name__ = f"segment_{call or 'batch'}"
    return endpoint


for _path in ("/v1/batch", "/v1/import", "/v1/b"):
    router.add_api_route(_path, _endpoint(None), methods=["POST"],
                         include_in_schema=_path == "/v1/batch",
                         summary="Segment batch: identify / track / page / screen / alias / group")
for _call, _short in _SINGLE_CALLS.items():
    router.add_api_route(f"/v1/{_call}", _endpoint(_call), methods=["POST"],
                         summary=f"Segment {_call} call")
    router.add_api_route(f"/v1/{_short}", _endpoint(_call), methods=["POST"],
                         include_in_schema=False)
