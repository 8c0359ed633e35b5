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
    backoff and jitter (safe: each POST / PATCH write sends an ``Idempotency-Key``, the same on
    every retry, so the server does it once; creating an API key is repeated only when the
    request did not reach the server); error answers raise the matching
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
        talk = _calls.conversation(plan, self.retry)
        reply: _calls.Reply = None
        while True:
            try:
                step = talk.send(reply)
            except StopIteration as done:
                return done.value
            if isinstance(step, float):
                time.sleep(step)
                reply = None
                continue
            try:
                reply = self._http.request(
                    step.method, step.path, json=step.json, params=step.params,
                    headers=step.headers
                )
            except httpx.TransportError as exc:
                reply = exc

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

