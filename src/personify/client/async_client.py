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
        if isinstance(plan, _calls.Chunked):
            result = plan.start()
            for call, offset in zip(plan.calls, plan.offsets, strict=True):
                plan.merge(result, await self._send(call), offset)
            return result
        return await self._send(plan)

    async def _send(self, call: _calls.Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, json=call.json, params=call.params
                )
            except httpx.TransportError as exc:
                if not self.retry.should_retry(attempt, error=exc, idempotent=call.idempotent):
                    raise
                await asyncio.sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            if response.is_success:
                return call.decode(response)
            if self.retry.should_retry(attempt, status=response.status_code,
                                       idempotent=call.idempotent):
                await asyncio.sleep(self.retry.delay(attempt, response.headers.get("retry-after")))
                attempt += 1
                continue
            raise _calls.error_from(response)

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
