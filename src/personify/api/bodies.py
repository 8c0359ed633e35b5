"""Reading raw JSON bodies with orjson: used where a bad record must not fail the whole request
(event batches, Segment batches), and for gzip-encoded bodies (RudderStack's default)."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from fastapi import Request

from personify.api.errors import MalformedJson
from personify.api.limits import too_large
from personify.domain.errors import InvalidInput


async def read_json(request: Request, *, max_bytes: int) -> Any:
    """The parsed JSON body; ``MalformedJson`` (400) when it does not parse, ``LimitExceeded``
    (413) when it (or its gzip expansion) is over ``max_bytes``."""
    raw = await request.body()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("gzip", "deflate"):
        raw = _inflate(raw, max_bytes=max_bytes, gzip=encoding == "gzip")
    elif encoding not in ("", "identity"):
        raise InvalidInput(
            f"unsupported Content-Encoding {encoding!r}",
            field="Content-Encoding",
            accepted="identity, gzip or deflate",
        )
    if not raw.strip():
        raise MalformedJson("the request body is empty", field="body", accepted="a JSON document")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJson(
            f"the request body is not valid JSON: {exc}", field="body", accepted="a JSON document"
        ) from None


def _inflate(raw: bytes, *, max_bytes: int, gzip: bool) -> bytes:
    """Decompress without ever holding more than ``max_bytes`` (a zip bomb is a 413)."""
    decoder = zlib.decompressobj(wbits=31 if gzip else 15)
    try:
        out = decoder.decompress(raw, max_bytes + 1)
    except zlib.error as exc:
        raise MalformedJson(
            f"the request body is not valid {'gzip' if gzip else 'deflate'} data: {exc}",
            field="body",
            accepted="a correctly compressed JSON document",
        ) from None
    if len(out) > max_bytes or decoder.unconsumed_tail:
        raise too_large(max_bytes)
    return out
