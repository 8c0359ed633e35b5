"""The asynchronous Personify client (httpx). Example::

async with AsyncPersonifyClient("http://127.0.0.1:8000", api_key) as client:
    await client.track({"event_id": "e1", "type": "view", "user_id": "u1",
                        "item_id": "i1", "timestamp": "2026-11-27T10:00:00Z"})

Its methods are the endpoints of :mod:`personify.client._calls`, shared with the sync client:
the same names, arguments, results, errors and retries, awaited.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TypeVar

import httpx

from personify.client import _calls
from personify.client._retry import RetryPolicy

T = TypeVar("T")


class AsyncPersonifyClient(_calls.AsyncRunner, _calls.Endpoints):
    """The asyncio twin of :class:`~personify.client.sync.PersonifyClient`: same methods, same
    retries and errors, awaited."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = RetryPolicy(retries=retries, base=backoff)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "personify-python"},
            timeout=timeout,
            transport=transport,
        )

    async def _run(self, plan: _calls.Plan[T]) -> T:
        talk = _calls.conversation(plan, self.retry)
        reply: _calls.Reply = None
        while True:
            try:
                step = talk.send(reply)
            except StopIteration as done:
                return done.value
            if isinstance(step, float):
                await asyncio.sleep(step)
                reply = None
                continue
            try:
                reply = await self._http.request(
                    step.method, step.path, json=step.json, params=step.params,
                    headers=step.headers
                )
            except httpx.TransportError as exc:
                reply = exc

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncPersonifyClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncPersonifyClient({str(self._http.base_url)!r})"
