"""OpenTelemetry tracing of the API and the serving chain (``pip install 'personify[otel]'``).

``tracing = "otlp"`` exports spans over OTLP/HTTP to ``tracing_endpoint`` (a collector such as
the OpenTelemetry Collector, Jaeger or Tempo; unset = the exporter's own default, which honours
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); ``"console"`` prints them (development). Spans are batched
in a background thread and flushed when the runtime closes. The provider is this runtime's own,
not the process-global one, so an application that embeds Personify keeps its own tracing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import personify
from personify.domain.errors import ConfigurationError
from personify.domain.tracing import set_tracer
from personify.settings import Settings


def start_tracing(settings: Settings, *, exporter: Any = None) -> Callable[[], None] | None:
    """Turn tracing on when the settings ask for it (or an ``exporter`` is given, for tests);
    returns the function that flushes and turns it off, or ``None`` when tracing stays off."""
    if settings.tracing == "off" and exporter is None:
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigurationError(
            f"tracing = {settings.tracing!r} needs the otel extra: pip install 'personify[otel]'"
        ) from exc
    if exporter is None:
        if settings.tracing == "console":
            exporter = ConsoleSpanExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=settings.tracing_endpoint)
    provider = TracerProvider(resource=Resource.create({
        "service.name": settings.tracing_service_name,
        "service.version": personify.__version__,
    }))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    set_tracer(provider.get_tracer("personify", personify.__version__))

    def stop() -> None:
        set_tracer(None)
        provider.shutdown()  # flushes the batch

    return stop
