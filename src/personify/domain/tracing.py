"""Spans around the stages of a request, for OpenTelemetry tracing (the ``personify[otel]`` extra).

Off by default: :func:`span` then returns one shared no-op context manager, so the serving chain
pays a function call per stage and nothing else. A runtime whose settings ask for tracing installs
a tracer of its own provider with :func:`set_tracer` (``personify.runtime.tracing``); nothing here
imports OpenTelemetry. Span attributes never carry personal data: stage and source names, counts,
the route template and the status — never a person's or an item's id.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

_NOOP: AbstractContextManager[Any] = contextlib.nullcontext()
_tracer: Any = None

Attributes = Mapping[str, str | int | float | bool]


def span(name: str, attributes: Attributes | None = None) -> AbstractContextManager[Any]:
    """A span named ``name`` as a child of the current one (the ``with`` target is the span, or
    ``None`` when tracing is off: guard ``set_attribute`` calls with ``if s is not None``)."""
    tracer = _tracer
    if tracer is None:
        return _NOOP
    return tracer.start_as_current_span(name, attributes=attributes)


def set_tracer(tracer: Any) -> None:
    """Install an OpenTelemetry tracer for :func:`span` (``None`` turns tracing off)."""
    global _tracer
    _tracer = tracer


def tracing_enabled() -> bool:
    return _tracer is not None
