"""``/v1/segments``: live segments defined by rules (JSON or text form, docs/insights.md),
evaluated for a person on each of their events; entries start journeys triggered by the
segment. Admin scope."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from personify.api.deps import AdminKey, InsightsDep, StoresDep
from personify.api.routing import KeyFirstRoute
from personify.api.schemas.common import QueryDateTime
from personify.domain.errors import InvalidInput, NotFound
from personify.insights.rules import FIELDS
from personify.insights.segments import Segment, SegmentIn

router = APIRouter(prefix="/v1/segments", tags=["segments"], route_class=KeyFirstRoute)


class SegmentOut(Segment):
    members: int
    """People in the segment among those evaluated by this process."""


class SegmentList(BaseModel):
    segments: list[SegmentOut]
    fields: dict[str, str]
    """Every field a rule may use, with its type and meaning."""


class RefreshOut(BaseModel):
    people: int
    seconds: float
    counts: dict[str, int]


class CountPoint(BaseModel):
    at: datetime
    members: int


class CountsOut(BaseModel):
    segment_id: str
    points: list[CountPoint]
    """Stored snapshots, oldest first: one at most every hour while people are evaluated, and
    one per full refresh."""


class MembersOut(BaseModel):
    segment_id: str
    user_ids: list[str]


def _missing(segment_id: str) -> NotFound:
    return NotFound(f"no segment {segment_id!r}", field="segment_id",
                    accepted="the id of an existing segment (GET /v1/segments)")


@router.get("", response_model=SegmentList, summary="List segments and the fields rules use")
def list_segments(key: AdminKey, insights: InsightsDep) -> SegmentList:
    tracker = insights.tracker
    assert tracker is not None
    counts = tracker.counts(key.tenant)
    return SegmentList(
        segments=[SegmentOut(**s.model_dump(), members=counts.get(sid, 0))
                  for sid, s in tracker.files.all(key.tenant).items()],
        fields={name: f"{kind}: {meaning}" for name, (kind, meaning) in FIELDS.items()},
    )


@router.put("/{segment_id}", response_model=SegmentOut, summary="Create or replace a segment")
def put_segment(segment_id: str, body: SegmentIn, key: AdminKey, insights: InsightsDep,
                ) -> SegmentOut:
    tracker = insights.tracker
    assert tracker is not None
    segment = tracker.files.put(key.tenant, segment_id, body)
    return SegmentOut(**segment.model_dump(), members=tracker.counts(key.tenant)[segment_id])


@router.get("/{segment_id}", response_model=SegmentOut, summary="Get a segment")
def get_segment(segment_id: str, key: AdminKey, insights: InsightsDep) -> SegmentOut:
    tracker = insights.tracker
    assert tracker is not None
    segment = tracker.files.all(key.tenant).get(segment_id)
    if segment is None:
        raise _missing(segment_id)
    return SegmentOut(**segment.model_dump(), members=tracker.counts(key.tenant)[segment_id])


@router.get("/{segment_id}/members", response_model=MembersOut,
            summary="The people in a segment (among those evaluated by this process)")
def segment_members(
    segment_id: str, key: AdminKey, insights: InsightsDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> MembersOut:
    tracker = insights.tracker
    assert tracker is not None
    if segment_id not in tracker.files.all(key.tenant):
        raise _missing(segment_id)
    return MembersOut(segment_id=segment_id,
                      user_ids=tracker.members(key.tenant, segment_id)[:limit])


@router.get("/{segment_id}/counts", response_model=CountsOut,
            summary="Members of a segment over time (stored snapshots)")
def segment_counts(
    segment_id: str, key: AdminKey, insights: InsightsDep,
    since: Annotated[
        QueryDateTime | None, Query(description="ISO 8601 time; older points left out")
    ] = None,
) -> CountsOut:
    tracker = insights.tracker
    assert tracker is not None
    if segment_id not in tracker.files.all(key.tenant):
        raise _missing(segment_id)
    if since is not None and since.tzinfo is None:
        raise InvalidInput("since needs a time zone", field="since",
                           accepted="an ISO 8601 time with an offset, e.g. 2026-03-01T00:00:00Z")
    series = tracker.history.series(key.tenant, segment_id, since=since) if tracker.history else []
    return CountsOut(segment_id=segment_id,
                     points=[CountPoint(at=at, members=n) for at, n in series])


@router.delete("/{segment_id}", status_code=204, summary="Delete a segment")
def delete_segment(segment_id: str, key: AdminKey, insights: InsightsDep) -> Response:
    tracker = insights.tracker
    assert tracker is not None
    tracker.files.delete(key.tenant, segment_id)
    return Response(status_code=204)


@router.post("/refresh", response_model=RefreshOut,
             summary="Re-evaluate every known user's segments (entries and exits notify)")
def refresh_segments(key: AdminKey, insights: InsightsDep, stores: StoresDep) -> RefreshOut:
    started = time.perf_counter()
    people = 0
    offset = 0
    while True:
        page = stores.users.list(key.tenant, limit=1000, offset=offset)
        insights.refresh_many(key.tenant, page)
        people += len(page)
        offset += len(page)
        if len(page) < 1000:
            break
    tracker = insights.tracker
    assert tracker is not None
    return RefreshOut(people=people, seconds=round(time.perf_counter() - started, 3),
                      counts=tracker.snapshot(key.tenant))
