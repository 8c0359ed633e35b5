"""The synchronous Personify client (httpx). Example::

with PersonifyClient("http://127.0.0.1:8000", api_key) as client:
    client.put_user({"user_id": "u1", "profile": {"country": "DE"}})
    client.send_events([{"event_id": "e1", "type": "view", "user_id": "u1",
                         "item_id": "i1", "timestamp": "2026-11-27T10:00:00Z"}])
    client.recommend("u1", n=5, explain=True)

Its methods are the endpoints of :mod:`personify.client._calls`, shared with the async client.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TypeVar

import httpx

from personify.client import _calls
from personify.client._retry import RetryPolicy

T = TypeVar("T")


class PersonifyClient(_calls.SyncRunner, _calls.Endpoints):
    """Typed access to the whole API. Retries connection errors, 429 and 5xx with exponential
    backoff and jitter (safe: writes are idempotent; the calls that are not are repeated only
    when the request did not reach the server); error answers raise the matching
    ``personify.domain.errors`` exception with its field and accepted values."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = RetryPolicy(retries=retries, base=backoff)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "personify-python"},
            timeout=timeout,
            transport=transport,
        )

    def _run(self, plan: _calls.Plan[T]) -> T:
        if isinstance(plan, _calls.Chunked):
            result = plan.start()
            for call, offset in zip(plan.calls, plan.offsets, strict=True):
                plan.merge(result, self._send(call), offset)
            return result
        return self._send(plan)

    def _send(self, call: _calls.Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method, call.path, json=call.json, params=call.params
                )
            except httpx.TransportError as exc:
                if not self.retry.should_retry(attempt, error=exc, idempotent=call.idempotent):
                    raise
                time.sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            if response.is_success:
                return call.decode(response)
            if self.retry.should_retry(attempt, status=response.status_code,
                                       idempotent=call.idempotent):
                time.sleep(self.retry.delay(attempt, response.headers.get("retry-after")))
                attempt += 1
                continue
            raise _calls.error_from(response)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PersonifyClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PersonifyClient({str(self._http.base_url)!r})"

