"""Request body size limit, enforced before the body is read (by Content-Length) and while it is
streamed (by counting), so an oversized or lying request never fills memory."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from personify.api.errors import error_body
from personify.api.responses import JSONBody
from personify.domain.errors import LimitExceeded


def too_large(max_bytes: int) -> LimitExceeded:
    """The error for a request body over ``max_bytes``."""
    return LimitExceeded(
        f"the request body is larger than {max_bytes} bytes",
        field="body",
        accepted=f"at most {max_bytes} bytes per request (PERSONIFY_MAX_REQUEST_BYTES)",
    )


class BodySizeLimit:
    """Pure ASGI middleware: 413 for a declared Content-Length over the limit, and a
    :class:`LimitExceeded` raised from ``receive`` once the streamed body passes it (mapped to
    413 by the error handlers)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and (declared < 0 or declared > self.max_bytes):
            error = too_large(self.max_bytes)
            if declared < 0:
                error = LimitExceeded("invalid Content-Length header", field="Content-Length",
                                      accepted="a non-negative integer")
            await _reply(scope, receive, send, error, 413 if declared >= 0 else 400)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise too_large(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except LimitExceeded as exc:
            if started:
                raise
            await _reply(scope, receive, send, exc, 413)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


async def _reply(scope: Scope, receive: Receive, send: Send, exc: LimitExceeded,
                 status: int) -> None:
    code = exc.code if status == 413 else "bad_request"
    body = error_body(code, exc.message, field=exc.field, accepted=exc.accepted)
    await JSONBody(body, status_code=status, headers={"Connection": "close"})(scope, receive, send)
