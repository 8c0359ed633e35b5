"""OpenTelemetry tracing (``tracing = "otlp"``, the otel extra): spans of a request and of the
serving chain's stages reach a collector over real OTLP/HTTP, nested under the request's span,
named by route template, and carry no person's or item's id."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from _tenant_keys import TenantKeys
from fastapi.testclient import TestClient

from personify.api import create_app
from personify.domain.tracing import span, tracing_enabled
from personify.settings import Settings
from personify.storage.registry import Stores

trace_service = pytest.importorskip(
    "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
    reason="the otel extra is not installed (pip install 'personify[otel]')",
)


class _Collector(BaseHTTPRequestHandler):
    received: list[bytes]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    handler = type("Collector", (_Collector,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/traces", handler.received
    server.shutdown()
    server.server_close()


def _spans(payloads: list[bytes]) -> list[Any]:
    spans = []
    for body in payloads:
        request = trace_service.ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                spans.extend(scope_spans.spans)
    return spans


def _attributes(span_: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span_.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


def test_a_recommendation_request_is_traced_stage_by_stage_without_personal_data(
    settings: Settings, stores: Stores, tenant_a: TenantKeys,
    collector: tuple[str, list[bytes]],
) -> None:
    endpoint, received = collector
    traced = settings.model_copy(update={"tracing": "otlp", "tracing_endpoint": endpoint,
                                         "tracing_service_name": "shop-api"})
    app = create_app(traced, stores=stores)
    with TestClient(app) as client:
        assert tracing_enabled()
        for purpose in ("personalization", "profiling"):
            client.post(f"/v1/users/zora-secret-id/consents/{purpose}:grant", json={},
                        headers=tenant_a.headers("admin"))
        r = client.post("/v1/recommendations", json={"user_id": "zora-secret-id", "n": 5},
                        headers=tenant_a.headers("serve"))
        assert r.status_code == 200, r.text
        request_id = r.headers["X-Request-Id"]
    assert not tracing_enabled()  # closing the app flushed and turned tracing off
    spans = _spans(received)
    assert spans, "the collector received no spans"
    by_name: dict[str, list[Any]] = {}
    for s in spans:
        by_name.setdefault(s.name, []).append(s)
    [request_span] = by_name["POST /v1/recommendations"]
    attrs = _attributes(request_span)
    assert attrs["http.route"] == "/v1/recommendations"
    assert attrs["http.response.status_code"] == 200
    assert attrs["personify.request_id"] == request_id
    [recommend] = by_name["personify.recommend"]
    assert recommend.parent_span_id == request_span.span_id
    assert recommend.trace_id == request_span.trace_id
    for stage in ("scope", "exclusions", "gather", "rank", "arrange"):
        [stage_span] = by_name[f"personify.recommend.{stage}"]
        assert stage_span.parent_span_id == recommend.span_id, stage
    sources = by_name.get("personify.source", [])
    assert sources, "no candidate source span"
    assert all("source" in _attributes(s) and "candidates" in _attributes(s) for s in sources)
    # the consent route is named by its template too, and no span anywhere names the person
    assert len(by_name["POST /v1/users/{user_id}/consents/{purpose}:{action}"]) == 2
    for body in received:
        assert b"zora-secret-id" not in body


def test_tracing_is_off_by_default_and_costs_no_span(settings: Settings, stores: Stores,
                                                     tenant_a: TenantKeys) -> None:
    assert settings.tracing == "off"
    with TestClient(create_app(settings, stores=stores)) as client:
        assert not tracing_enabled()
        with span("anything") as s:
            assert s is None
        assert client.get("/health").status_code == 200


def test_a_bad_tracing_setting_names_the_field() -> None:
    with pytest.raises(ValueError) as info:
        Settings(tracing="zipkin")  # type: ignore[arg-type]
    assert "tracing" in str(info.value)
    assert "otlp" in str(info.value)
