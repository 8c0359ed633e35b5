"""``Idempotency-Key``: a retried write is done once. Pure ASGI middleware over ``/v1``.

A ``POST`` or ``PATCH`` carrying the header claims the key for the request's tenant and API
key (``storage.sql.idempotency``, in the database so every process shares it) before the route
runs. A repeat with the same key and the same request (method, path, query and body; a JSON
body compared by content, not spacing or key order) gets the stored first answer, status and
body, with ``Idempotent-Replayed: true``; the same key with a different request is refused with
422, and a repeat while the first is still running with 409. Answers kept: 2xx and 4xx except
401, 403 and 429 (nothing was done; a retry should be tried for real); a 5xx or a broken
request gives the key back. Keys expire ``idempotency_hours`` after the first request.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from personify.api.errors import error_body
from personify.api.responses import JSONBody
from personify.domain.errors import PersonifyError
from personify.domain.limits import MAX_IDEMPOTENCY_KEY_LENGTH
from personify.runtime.auth import secret_from_headers
from personify.storage.sql import idempotency as store

if TYPE_CHECKING:
    from personify.runtime.container import Runtime

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
METHODS = frozenset({"POST", "PATCH"})
NOT_KEPT_STATUSES = frozenset({401, 403, 429})
"""4xx answers that did nothing: a retry runs again instead of getting them back."""
SECRET_ROUTES = ("/v1/keys",)
"""Routes whose answer carries a secret: never kept, so a key is refused there."""
ACCEPTED = f"1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters (a UUID is typical)"


def request_hash(method: str, path: str, query: bytes, body: bytes) -> str:
    """SHA-256 of what makes two requests the same; a JSON body by content (sorted keys)."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _valid(key: str) -> bool:
    return 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH and all(
        "!" <= char <= "~" for char in key)


class IdempotencyKeys:
    """The middleware (see the module docstring); ``runtime`` gives the store, the key
    authentication, the clock and ``settings.idempotency_hours``."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        path = scope.get("path", "")
        idempotency = self.runtime.stores.idempotency
        if (key is None or scope["method"] not in METHODS or not path.startswith("/v1/")
                or idempotency is None):
            await self.app(scope, receive, send)
            return
        if not _valid(key):
            await _error(scope, receive, send, 400, "invalid_input",
                         f"the {HEADER} header is not a valid key")
            return
        if path.rstrip("/") in SECRET_ROUTES:
            await _error(scope, receive, send, 400, "invalid_input",
                         f"{scope['method']} {path} does not take an {HEADER}: its answer "
                         "carries a secret, which is never stored to be sent again",
                         accepted="no Idempotency-Key header on this route")
            return
        secret = secret_from_headers(_header(scope, b"authorization"),
                                     _header(scope, b"x-api-key"))
        try:
            api_key = await run_in_threadpool(self.runtime.authenticator.authenticate, secret)
        except PersonifyError:  # the route answers 401 / 403 itself
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        owner = store.Scope(api_key.tenant, api_key.key_id, key)
        digest = request_hash(scope["method"], path, scope.get("query_string", b""), body)
        hours = self.runtime.settings.idempotency_hours
        claim = await run_in_threadpool(
            lambda: idempotency.claim(owner, digest, now=self.runtime.clock(),
                                      ttl=timedelta(hours=hours)))
        if claim.verdict is store.Verdict.MISMATCH:
            await _error(scope, receive, send, 422, "invalid_input",
                         f"this {HEADER} was already used for a different request (method, "
                         f"path, query or body) in the last {hours:g} hours",
                         accepted="a new key for a new request; the same key only to repeat "
                         "the same request")
            return
        if claim.verdict is store.Verdict.IN_PROGRESS:
            await _error(scope, receive, send, 409, "conflict",
                         f"a request with this {HEADER} is still running; repeat it once that "
                         "one has answered", accepted="the same request again a moment later")
            return
        if claim.verdict is store.Verdict.REPLAY:
            await _replay(send, claim)
            return
        await self._run(scope, _replaying(body, receive), send, owner)

    async def _run(self, scope: Scope, receive: Receive, send: Send,
                   owner: store.Scope) -> None:
        idempotency = self.runtime.stores.idempotency
        assert idempotency is not None
        status: int | None = None
        content_type: str | None = None
        chunks: list[bytes] = []
        finished = False

        async def keeping_send(message: Message) -> None:
            nonlocal status, content_type, finished
            if message["type"] == "http.response.start":
                status = int(message["status"])
                content_type = _header_of(message.get("headers", ()), b"content-type")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                finished = not message.get("more_body", False)
            await send(message)

        try:
            await self.app(scope, receive, keeping_send)
        finally:
            if finished and status is not None and _kept(status):
                await run_in_threadpool(
                    lambda: idempotency.complete(owner, status=status or 0,
                                                 content_type=content_type,
                                                 body=b"".join(chunks)))
            else:
                await run_in_threadpool(idempotency.release, owner)


def _kept(status: int) -> bool:
    return 200 <= status < 500 and status not in NOT_KEPT_STATUSES


def _header(scope: Scope, name: bytes) -> str | None:
    return _header_of(scope.get("headers", ()), name)


def _header_of(headers: object, name: bytes) -> str | None:
    for key, value in headers:  # type: ignore[attr-defined]
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _replaying(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _replay(send: Send, claim: store.Claim) -> None:
    headers = [(REPLAYED_HEADER.lower().encode(), b"true")]
    if claim.content_type:
        headers.append((b"content-type", claim.content_type.encode("latin-1")))
    body = claim.body or b""
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": claim.status or 200,
                "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _error(scope: Scope, receive: Receive, send: Send, status: int, code: str,
                 message: str, *, accepted: str = ACCEPTED) -> None:
    body = error_body(code, message, field=HEADER, accepted=accepted)
    await JSONBody(body, status_code=status)(scope, receive, send)
