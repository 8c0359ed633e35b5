"""Process logging: one JSON object per line (``log_format = "json"``, the default of ``personify
serve`` and the workers) or plain text, with the current request's id on every record logged
while that request runs.

What is logged never names a person: the access line carries the route *template*
(``/v1/users/{user_id}``), never the raw path, query or client address; privacy logs use
pseudonymous subject hashes. ``tests/integration/test_privacy_lifecycle.py`` checks it.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("personify_request_id", default=None)
"""The id of the request being handled in this context (None outside a request)."""

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

FIELDS = ("request_id", "method", "route", "status", "duration_ms", "tenant", "event")
"""Extra record attributes copied into the JSON line (anything else passed as ``extra`` is not:
a careless ``extra={"email": ...}`` never reaches the log)."""


def request_id_from(incoming: str | None) -> str:
    """The caller's ``X-Request-Id`` when it is sane (1-128 characters of ``A-Za-z0-9._:-``),
    else a new random id (32 hex characters)."""
    if incoming and _SANE_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id", ...}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            out["request_id"] = request_id
        for name in FIELDS[1:]:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """``time level logger [request id] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        return f"{text} [{request_id}]" if request_id else text


def logging_config(log_format: str = "json", level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the root logger and uvicorn's loggers (uvicorn's
    access log is replaced by Personify's own access line: see ``api/observability.py``)."""
    formatter = "personify.runtime.logs.JsonFormatter" if log_format == "json" else (
        "personify.runtime.logs.PlainFormatter"
    )
    handler = {"class": "logging.StreamHandler", "formatter": "default",
               "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": formatter}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True, "level": level.upper()},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
        },
    }


def configure_logging(log_format: str = "json", level: str = "info") -> None:
    """Apply :func:`logging_config` to this process (the workers; ``personify serve`` hands the
    same dictionary to uvicorn)."""
    logging.config.dictConfig(logging_config(log_format, level))
