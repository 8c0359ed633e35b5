"""A local webhook receiver for tests and benchmarks: answers ``204`` to every POST and keeps
what it received (headers and body), optionally after a delay per request.

>>> with WebhookSink() as sink:
...     sink.url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import orjson


class WebhookSink:
    """``url`` to POST to; ``received`` holds ``(headers, body)`` in arrival order and
    ``payloads()`` the JSON bodies. ``delay`` seconds pass before each answer (a send that
    takes a moment). Start with ``with`` (or ``start()`` / ``close()``)."""

    def __init__(self, *, delay: float = 0.0, path: str = "/hook") -> None:
        self.delay = delay
        self.path = path
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the sink first"
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def payloads(self) -> list[Any]:
        """The received bodies, parsed as JSON."""
        with self._lock:
            return [orjson.loads(body) for _, body in self.received]

    def start(self) -> WebhookSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if sink.delay:
                    time.sleep(sink.delay)
                with sink._lock:
                    sink.received.append((dict(self.headers), body))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> WebhookSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
