"""Segments: every live segment with its rule and members now, and the stored counts over time
(one line per segment)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import Response

from personify.dashboard.charts import Chart, Series
from personify.dashboard.pages.common import page_router, tenant
from personify.dashboard.rendering import render, translator
from personify.dashboard.state import insights

router = page_router()
MAX_LINES = 12
"""Segments drawn in the chart (the largest now); the table lists every one."""


@router.get("/segments")
def segments_page(
    request: Request, days: Annotated[int, Query(ge=1, le=3650)] = 30,
) -> Response:
    service = insights(request)
    who = tenant(request)
    tracker = service.tracker
    defined = tracker.files.all(who) if tracker is not None else {}
    counts = tracker.counts(who) if tracker is not None else {}
    history = tracker.history if tracker is not None else None
    now = service.clock()
    points = history.read(who, since=now - timedelta(days=days)) if history is not None else []
    drawn = sorted(defined, key=lambda sid: (-counts.get(sid, 0), sid))[:MAX_LINES]
    chart = Chart(
        "segment-members", translator(request)("chart_segment_members"),
        [at.strftime("%Y-%m-%d %H:%M") for at, _ in points],
        [Series(sid, [float(c[sid]) if sid in c else None for _, c in points])
         for sid in drawn],
        x=[at.timestamp() for at, _ in points], time_axis=True,
    )
    return render(
        request, "segments.html", section="segments",
        segments=[(s, counts.get(sid, 0)) for sid, s in sorted(defined.items())],
        chart=chart, days=days, snapshots=len(points),
    )
