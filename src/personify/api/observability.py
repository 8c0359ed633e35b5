"""The HTTP side of observability: a request id on every request (``X-Request-Id``, the caller's
when sane, echoed in the response), one access log line per request and the latency histogram
``personify_http_request_duration_seconds{method, route, status}``.

Both name the route *template* (``/v1/users/{user_id}``), never the raw path: ids in paths are
personal data and unbounded label values. A request matching no route is ``unmatched``.
Probes (``/health``, ``/ready``, ``/metrics``) are logged at DEBUG, everything else at INFO.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from personify.domain.tracing import span
from personify.runtime.logs import REQUEST_ID_HEADER, request_id_from, request_id_var
from personify.runtime.metrics import Metrics

log = logging.getLogger("personify.access")

_HEADER = REQUEST_ID_HEADER.lower().encode()
PROBES = frozenset({"/health", "/ready", "/metrics"})


def route_template(scope: Scope) -> str:
    """The matched route's path template (with a mount's prefix), or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    if not path:
        return "unmatched"
    return f"{scope.get('app_root_path', '')}{path}" if scope.get("app_root_path") else str(path)


class RequestObservability:
    """Pure ASGI middleware (no per-request task or body copy; see the module docstring)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == _HEADER:
                incoming = value.decode("latin-1")
                break
        request_id = request_id_from(incoming)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        encoded = request_id.encode()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers: list[Any] = list(message.get("headers", ()))
                headers.append((_HEADER, encoded))
                message = {**message, "headers": headers}
            await send(message)

        method = scope.get("method", "GET")
        with span("personify.request", {"http.request.method": method}) as traced:
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                route = route_template(scope)
                if traced is not None:  # OpenTelemetry's HTTP server conventions, no raw path
                    traced.update_name(f"{method} {route}")
                    traced.set_attribute("http.route", route)
                    traced.set_attribute("http.response.status_code", status)
                    traced.set_attribute("personify.request_id", request_id)
                self.metrics.http_requests.labels(method, route, str(status)).observe(elapsed)
                log.log(
                    logging.DEBUG if route in PROBES else logging.INFO,
                    "%s %s %d %.1fms", method, route, status, elapsed * 1000,
                    extra={"request_id": request_id, "method": method, "route": route,
                           "status": status, "duration_ms": round(elapsed * 1000, 2)},
                )
                request_id_var.reset(token)
