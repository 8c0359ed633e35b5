"""A local SMTP sink (aiosmtpd) for development, tests and benchmarks: it accepts every message
and records its Message-ID (in memory, and optionally one line per message in a file).

``aiosmtpd`` is a development dependency; importing this module without it raises
:class:`personify.domain.errors.Unavailable`.
"""

from __future__ import annotations

import email
import re
import socket
import threading
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, cast

from personify.domain.errors import Unavailable

try:
    from aiosmtpd.controller import Controller
except ImportError as exc:  # pragma: no cover - depends on the install
    raise Unavailable("the SMTP sink needs aiosmtpd (pip install aiosmtpd)") from exc

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


def free_port(host: str = "127.0.0.1") -> int:
    """An ephemeral TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class RecordingHandler:
    """aiosmtpd handler: keeps every message (parsed lazily) and appends Message-IDs to a file."""

    def __init__(self, record_file: str | Path | None = None, *, keep_bodies: bool = True) -> None:
        self.lock = threading.Lock()
        self.message_ids: list[str] = []
        self.raw: list[bytes] = []
        self.recipients: list[list[str]] = []
        self.keep_bodies = keep_bodies
        self._file = open(record_file, "ab", buffering=0) if record_file else None  # noqa: SIM115

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content
        match = _MESSAGE_ID.search(content)
        message_id = match.group(1).decode("ascii", "replace") if match else ""
        with self.lock:
            self.message_ids.append(message_id)
            self.recipients.append(list(envelope.rcpt_tos))
            if self.keep_bodies:
                self.raw.append(content)
            if self._file is not None:
                self._file.write(message_id.encode("ascii", "replace") + b"\n")
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            raw = list(self.raw)
        # the default policy parses into EmailMessage (get_body, get_content)
        return [cast(EmailMessage, email.message_from_bytes(r, policy=default_policy)) for r in raw]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class SmtpSink:
    """``with SmtpSink() as sink:`` a real SMTP server on 127.0.0.1 and an ephemeral port."""

    def __init__(self, record_file: str | Path | None = None, *, keep_bodies: bool = True) -> None:
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.handler = RecordingHandler(record_file, keep_bodies=keep_bodies)
        self._controller = Controller(self.handler, hostname=self.host, port=self.port)

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
        self.handler.close()


def serve_forever(port: int, record_file: str, ready: Any, stop: Any) -> None:
    """Process entry point: run a sink on ``port`` until ``stop`` (an Event) is set; its CPU
    seconds are written to ``<record_file>.cpu`` at the end."""
    import time

    handler = RecordingHandler(record_file, keep_bodies=False)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        stop.wait()
    finally:
        controller.stop()
        handler.close()
        Path(f"{record_file}.cpu").write_text(f"{time.process_time():.3f}\n", encoding="ascii")
