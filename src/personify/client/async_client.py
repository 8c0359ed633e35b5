"""The asynchronous Personify client (httpx). Example::

async with AsyncPersonifyClient("http://127.0.0.1:8000", api_key) as client:
    await client.track({"event_id": "e1", "type": "view", "user_id": "u1",
                        "item_id": "i1", "timestamp": "2026-11-27T10:00:00Z"})
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from personify.client import _calls
from personify.client._retry import RetryPolicy
from personify.client.results import (
    BulkResult,
    Consents,
    CreatedKey,
    ErasureReceipt,
    EventAck,
    IngestResult,
)
from personify.domain.consents import ConsentRecord
from personify.domain.events import Event
from personify.domain.items import Item, ItemPatch
from personify.domain.keys import ApiKey, Scope
from personify.domain.users import User, UserPatch

T = TypeVar("T")


class AsyncPersonifyClient:
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

    async def _run(self, call: _calls.Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, json=call.json, params=call.params
                )
            except httpx.TransportError as exc:
                if not call.idempotent or not self.retry.should_retry(attempt, error=exc):
                    raise
                await asyncio.sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            if response.is_success:
                return call.decode(response)
            if call.idempotent and self.retry.should_retry(attempt, status=response.status_code):
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

    async def health(self) -> dict[str, Any]:
        """Liveness of the server."""
        return await self._run(_calls.health())

    async def ready(self) -> dict[str, Any]:
        """Readiness (the database answers); Unavailable when not ready."""
        return await self._run(_calls.ready())

    async def put_user(self, user: User | Mapping[str, Any]) -> User:
        """Create or replace a user (idempotent)."""
        return await self._run(_calls.put_user(user))

    async def patch_user(self, user_id: str, patch: UserPatch | Mapping[str, Any]) -> User:
        """Change some fields of a user."""
        return await self._run(_calls.patch_user(user_id, patch))

    async def get_user(self, user_id: str) -> User:
        """A user; NotFound when absent."""
        return await self._run(_calls.get_user(user_id))

    async def delete_user(self, user_id: str) -> ErasureReceipt:
        """Erase a user's profile, events and consents."""
        return await self._run(_calls.delete_user(user_id))

    async def list_users(
        self, *, query: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[User]:
        """List or search users."""
        return await self._run(_calls.list_users(query, limit, offset))

    async def add_alias(self, user_id: str, anonymous_id: str) -> User:
        """Merge an anonymous / session id into a user."""
        return await self._run(_calls.add_alias(user_id, anonymous_id))

    async def bulk_upsert_users(self, users: Iterable[User | Mapping[str, Any]]) -> BulkResult:
        """Upsert many users (split into requests of at most 10,000)."""
        chunked = _calls.bulk_users(users)
        result = BulkResult()
        for call, offset in zip(chunked.calls, chunked.offsets, strict=True):
            result.merge(await self._run(call), offset)
        return result

    async def put_item(self, item: Item | Mapping[str, Any]) -> Item:
        """Create or replace an item (idempotent)."""
        return await self._run(_calls.put_item(item))

    async def patch_item(self, item_id: str, patch: ItemPatch | Mapping[str, Any]) -> Item:
        """Change some fields of an item."""
        return await self._run(_calls.patch_item(item_id, patch))

    async def get_item(self, item_id: str) -> Item:
        """An item; NotFound when absent."""
        return await self._run(_calls.get_item(item_id))

    async def delete_item(self, item_id: str) -> None:
        """Delete an item."""
        return await self._run(_calls.delete_item(item_id))

    async def list_items(
        self, *, type: str | None = None, query: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Item]:
        """List or search items, optionally of one type."""
        return await self._run(_calls.list_items(type, query, limit, offset))

    async def bulk_upsert_items(self, items: Iterable[Item | Mapping[str, Any]]) -> BulkResult:
        """Upsert many items (split into requests of at most 10,000)."""
        chunked = _calls.bulk_items(items)
        result = BulkResult()
        for call, offset in zip(chunked.calls, chunked.offsets, strict=True):
            result.merge(await self._run(call), offset)
        return result

    async def track(self, event: Event | Mapping[str, Any]) -> EventAck:
        """Send one event; a repeated event id is acknowledged as a duplicate."""
        return await self._run(_calls.track(event))

    async def send_events(self, events: Iterable[Event | Mapping[str, Any]]) -> IngestResult:
        """Send events in batches of at most 10,000; rejections keep their index."""
        chunked = _calls.send_events(events)
        result = IngestResult()
        for call, offset in zip(chunked.calls, chunked.offsets, strict=True):
            result.merge(await self._run(call), offset)
        return result

    async def user_events(
        self,
        user_id: str,
        *,
        limit: int = 100,
        types: Sequence[str] | None = None,
        before: datetime | None = None,
    ) -> list[Event]:
        """A user's events, newest first."""
        return await self._run(_calls.user_events(user_id, limit, types, before))

    async def recommend_session(
        self,
        items: Sequence[str | Mapping[str, Any]],
        *,
        n: int = 10,
        widget: str | None = None,
        context: Mapping[str, Any] | None = None,
        language: str | None = None,
        include_items: bool | None = None,
    ) -> dict[str, Any]:
        """Recommendations from the current visit only (item ids, or ``{"item_id", "type",
        "timestamp"}`` dicts, oldest first); the server stores nothing about the visitor."""
        options = {"widget": widget, "context": dict(context) if context else None,
                   "language": language, "include_items": include_items}
        return await self._run(_calls.recommend_session(items, n, options))

    async def page(
        self,
        name: str = "home",
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        language: str | None = None,
        rows: Sequence[str] | None = None,
        country: str | None = None,
        city: str | None = None,
        device: str | None = None,
        channel: str | None = None,
    ) -> dict[str, Any]:
        """A personalized page of rows for one person (``GET /v1/pages/{name}``)."""
        params = {"user_id": user_id, "anonymous_id": anonymous_id, "language": language,
                  "rows": list(rows) if rows else None, "country": country, "city": city,
                  "device": device, "channel": channel}
        return await self._run(_calls.page(name, params))

    async def pages(self) -> list[str]:
        """The tenant's page names (``home`` always)."""
        return await self._run(_calls.pages())

    async def page_definition(self, name: str) -> dict[str, Any]:
        return await self._run(_calls.page_definition(name))

    async def put_page(self, name: str, definition: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace a page definition (rows, max_rows, policy)."""
        return await self._run(_calls.put_page(name, definition))

    async def delete_page(self, name: str) -> None:
        await self._run(_calls.delete_page(name))

    async def people(self, user_id: str, *, n: int = 10) -> dict[str, Any]:
        """People this person should meet (reciprocal), with reasons both sides may see."""
        return await self._run(_calls.people(user_id, n))

    async def record_consent(
        self,
        user_id: str,
        purpose: str,
        state: str,
        *,
        source: str = "api",
        text_version: str | None = None,
        expires_at: datetime | None = None,
    ) -> ConsentRecord:
        """Append a consent change for one purpose."""
        return await self._run(
            _calls.record_consent(user_id, purpose, state, source, text_version, expires_at)
        )

    async def consents(self, user_id: str) -> Consents:
        """The current consent per purpose and the history."""
        return await self._run(_calls.consents(user_id))

    async def list_keys(self) -> list[ApiKey]:
        """The keys of the caller's tenant."""
        return await self._run(_calls.list_keys())

    async def create_key(self, name: str, scopes: Iterable[Scope | str]) -> CreatedKey:
        """Create a key; the secret is in the result only."""
        return await self._run(_calls.create_key(name, scopes))

    async def revoke_key(self, key_id: str) -> None:
        """Revoke a key."""
        return await self._run(_calls.revoke_key(key_id))

    async def send_campaign(self, campaign: Mapping[str, Any]) -> dict[str, Any]:
        """Store and schedule a campaign (with ``variants`` an A/B/n test; idempotent per
        person). Returns name, enqueued, variants, decide_at."""
        return await self._run(_calls.send_campaign(campaign))

    async def campaign_results(self, name: str) -> dict[str, Any]:
        """A test campaign's analysis: per-variant totals and rates, comparisons with the
        control, verdict and the winner decision."""
        return await self._run(_calls.campaign_results(name))
