"""``/metrics``: this process's Prometheus metrics (text exposition format).

Not public: the key needs the ``metrics`` scope (or ``admin``); a Prometheus job presents it with
``authorization: {credentials: ...}`` (docs/deployment.md). The values are this process's
(``personify serve --workers N`` answers from whichever worker took the scrape)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from personify.api.deps import MetricsKey, runtime_of
from personify.api.routing import KeyFirstRoute
from personify.runtime.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"], route_class=KeyFirstRoute)


@router.get(
    "/metrics",
    summary="Prometheus metrics of this process (key scope: metrics)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "text exposition format"}},
)
def metrics(_key: MetricsKey, request: Request) -> Response:
    return Response(runtime_of(request).metrics.render(), media_type=CONTENT_TYPE)
