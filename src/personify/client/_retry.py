"""Retry policy: exponential backoff with jitter on connection errors, 429 and 5xx. Safe because
every POST / PATCH write carries an ``Idempotency-Key`` that stays the same across its retries
(the server answers a repeat with the first answer instead of acting twice) and the other
writes are idempotent by nature (PUT, DELETE); the one call without a key (creating an API
key, whose answer holds a secret the server never keeps) is repeated only when the request
surely did not reach the handler."""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
NOT_HANDLED_STATUSES = frozenset({429})
"""Answers that say the request was refused before anything was done (rate limited)."""
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors raised before the request left the client."""


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` extra attempts; the n-th waits ``base * 2**n`` seconds (at most ``cap``),
    scaled by a random factor in [0.5, 1] so that many clients do not retry in step."""

    retries: int = 3
    base: float = 0.2
    cap: float = 10.0

    def should_retry(self, attempt: int, *, status: int | None = None,
                     error: Exception | None = None, idempotent: bool = True) -> bool:
        if attempt >= self.retries:
            return False
        if error is not None:
            if not idempotent:
                return isinstance(error, NOT_SENT_ERRORS)
            return isinstance(error, httpx.TransportError)
        return status in (RETRY_STATUSES if idempotent else NOT_HANDLED_STATUSES)

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1``; honours a numeric Retry-After."""
        if retry_after is not None:
            try:
                return min(self.cap, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return min(self.cap, self.base * 2**attempt) * random.uniform(0.5, 1.0)
