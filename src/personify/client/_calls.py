"""The HTTP calls of the API, described once and executed by both the sync and the async
client: method, path, body, and how to decode the answer. Also turns error bodies into
``personify.domain.errors`` exceptions."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from personify.client.results import (
    BulkResult,
    Consents,
    CreatedKey,
    ErasureReceipt,
    EventAck,
    IngestResult,
)
from personify.domain import errors
from personify.domain.consents import ConsentRecord
from personify.domain.events import Event
from personify.domain.items import Item, ItemPatch
from personify.domain.keys import ApiKey, Scope
from personify.domain.limits import MAX_BATCH_EVENTS, MAX_BATCH_RECORDS
from personify.domain.users import User, UserPatch

T = TypeVar("T")

_ERRORS_BY_CODE: dict[str, type[errors.PersonifyError]] = {
    "invalid_input": errors.InvalidInput,
    "malformed_json": errors.InvalidInput,
    "limit_exceeded": errors.LimitExceeded,
    "not_found": errors.NotFound,
    "conflict": errors.Conflict,
    "unauthorized": errors.Unauthorized,
    "forbidden": errors.Forbidden,
    "erased": errors.Erased,
    "unavailable": errors.Unavailable,
    "not_fitted": errors.NotFitted,
    "rate_limited": errors.RateLimited,
}
_ERRORS_BY_STATUS: dict[int, type[errors.PersonifyError]] = {
    400: errors.InvalidInput, 401: errors.Unauthorized, 403: errors.Forbidden,
    404: errors.NotFound, 409: errors.Conflict, 410: errors.Erased, 413: errors.LimitExceeded,
    422: errors.InvalidInput, 429: errors.RateLimited, 503: errors.Unavailable,
}


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the decoder of its successful answer."""

    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    json: Any = None
    params: Mapping[str, Any] | None = None
    idempotent: bool = True
    """Safe to repeat after a lost answer (everything but key creation)."""


@dataclass
class Chunked(Generic[T]):
    """A batch split into calls of at most the server's limit; ``offsets[i]`` is the index of
    the first record of ``calls[i]``."""

    calls: list[Call[dict[str, Any]]] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)


def error_from(response: httpx.Response) -> errors.PersonifyError:
    """The domain error for an error answer (its code, message, field and accepted values)."""
    try:
        body = response.json()["error"]
        code, message = str(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        body, code, message = {}, "", response.text[:500] or response.reason_phrase
    cls = _ERRORS_BY_CODE.get(code) or _ERRORS_BY_STATUS.get(response.status_code)
    cls = cls or errors.PersonifyError
    error = cls(message, field=body.get("field"), accepted=body.get("accepted"),
                details={"status": response.status_code, "code": code})
    if isinstance(error, errors.RateLimited):
        with contextlib.suppress(ValueError):  # an HTTP date: not sent by Personify
            error.retry_after_s = float(response.headers.get("retry-after", 0))
    return error


def _id(value: str) -> str:
    return quote(value, safe="")


def _json(response: httpx.Response) -> Any:
    return response.json()


def _model(cls: type[BaseModel]) -> Callable[[httpx.Response], Any]:
    return lambda response: cls.model_validate(response.json())


def _nothing(_response: httpx.Response) -> None:
    return None


def _dump(record: BaseModel | Mapping[str, Any], *, exclude: Collection[str] = ()) -> Any:
    """A record as JSON-ready data without the fields the server sets."""
    if isinstance(record, BaseModel):
        return record.model_dump(mode="json", exclude_none=True, exclude=set(exclude))
    return {k: v for k, v in record.items() if k not in exclude}


_SERVER_FIELDS = {"created_at", "updated_at", "received_at"}


# -- users ----------------------------------------------------------------------------------


def put_user(user: User | Mapping[str, Any]) -> Call[User]:
    body = _dump(user, exclude={"user_id", *_SERVER_FIELDS})
    user_id = user.user_id if isinstance(user, User) else str(user["user_id"])
    return Call("PUT", f"/v1/users/{_id(user_id)}", _model(User), json=body)


def patch_user(user_id: str, patch: UserPatch | Mapping[str, Any]) -> Call[User]:
    return Call("PATCH", f"/v1/users/{_id(user_id)}", _model(User), json=_dump(patch))


def get_user(user_id: str) -> Call[User]:
    return Call("GET", f"/v1/users/{_id(user_id)}", _model(User))


def delete_user(user_id: str) -> Call[ErasureReceipt]:
    return Call("DELETE", f"/v1/users/{_id(user_id)}", lambda r: ErasureReceipt.from_json(r.json()))


def list_users(query: str | None, limit: int, offset: int) -> Call[list[User]]:
    params = {"limit": limit, "offset": offset, **({"query": query} if query else {})}
    return Call("GET", "/v1/users", lambda r: [User.model_validate(u) for u in r.json()["users"]],
                params=params)


def add_alias(user_id: str, anonymous_id: str) -> Call[User]:
    return Call("POST", f"/v1/users/{_id(user_id)}/aliases", _model(User),
                json={"anonymous_id": anonymous_id})


def bulk_users(users: Iterable[User | Mapping[str, Any]]) -> Chunked[BulkResult]:
    records = [_dump(u, exclude=_SERVER_FIELDS) for u in users]
    return _chunks("/v1/users:bulk", records, MAX_BATCH_RECORDS)


# -- items ----------------------------------------------------------------------------------


def put_item(item: Item | Mapping[str, Any]) -> Call[Item]:
    body = _dump(item, exclude={"item_id", "updated_at"})
    item_id = item.item_id if isinstance(item, Item) else str(item["item_id"])
    return Call("PUT", f"/v1/items/{_id(item_id)}", _model(Item), json=body)


def patch_item(item_id: str, patch: ItemPatch | Mapping[str, Any]) -> Call[Item]:
    return Call("PATCH", f"/v1/items/{_id(item_id)}", _model(Item), json=_dump(patch))


def get_item(item_id: str) -> Call[Item]:
    return Call("GET", f"/v1/items/{_id(item_id)}", _model(Item))


def delete_item(item_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/items/{_id(item_id)}", _nothing)


def list_items(type: str | None, query: str | None, limit: int, offset: int) -> Call[list[Item]]:
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if type:
        params["type"] = type
    if query:
        params["query"] = query
    return Call("GET", "/v1/items", lambda r: [Item.model_validate(i) for i in r.json()["items"]],
                params=params)


def bulk_items(items: Iterable[Item | Mapping[str, Any]]) -> Chunked[BulkResult]:
    records = [_dump(i, exclude={"updated_at"}) for i in items]
    return _chunks("/v1/items:bulk", records, MAX_BATCH_RECORDS)


# -- events ---------------------------------------------------------------------------------


def track(event: Event | Mapping[str, Any]) -> Call[EventAck]:
    return Call("POST", "/v1/events", lambda r: EventAck(**r.json()),
                json=_dump(event, exclude={"received_at"}))


def send_events(events: Iterable[Event | Mapping[str, Any]]) -> Chunked[IngestResult]:
    records = [_dump(e, exclude={"received_at"}) for e in events]
    return _chunks("/v1/events/batch", records, MAX_BATCH_EVENTS)


def user_events(user_id: str, limit: int, types: Sequence[str] | None,
                before: datetime | None) -> Call[list[Event]]:
    params: dict[str, Any] = {"limit": limit}
    if types:
        params["type"] = list(types)
    if before is not None:
        params["before"] = before.isoformat()
    return Call("GET", f"/v1/users/{_id(user_id)}/events",
                lambda r: [Event.model_validate(e) for e in r.json()["events"]], params=params)


def people(user_id: str, n: int) -> Call[dict[str, Any]]:
    return Call("GET", f"/v1/users/{_id(user_id)}/people", _json, params={"n": n})


# -- session recommendations and pages ----------------------------------------------------


def recommend_session(items: Sequence[str | Mapping[str, Any]], n: int,
                      options: Mapping[str, Any]) -> Call[dict[str, Any]]:
    visit = [{"item_id": i} if isinstance(i, str) else dict(i) for i in items]
    body = {"items": visit, "n": n, **{k: v for k, v in options.items() if v is not None}}
    return Call("POST", "/v1/recommendations/session", _json, json=body)


def page(name: str, params: Mapping[str, Any]) -> Call[dict[str, Any]]:
    return Call("GET", f"/v1/pages/{_id(name)}", _json,
                params={k: v for k, v in params.items() if v is not None})


def pages() -> Call[list[str]]:
    return Call("GET", "/v1/pages", lambda r: list(r.json()["pages"]))


def page_definition(name: str) -> Call[dict[str, Any]]:
    return Call("GET", f"/v1/pages/{_id(name)}/definition", _json)


def put_page(name: str, definition: Mapping[str, Any]) -> Call[dict[str, Any]]:
    return Call("PUT", f"/v1/pages/{_id(name)}/definition", _json, json=dict(definition))


def delete_page(name: str) -> Call[None]:
    return Call("DELETE", f"/v1/pages/{_id(name)}/definition", _nothing)


def _chunks(path: str, records: list[Any], size: int) -> Chunked[Any]:
    chunked: Chunked[Any] = Chunked()
    for start in range(0, max(len(records), 1), size):
        chunked.calls.append(Call("POST", path, _json, json=records[start : start + size]))
        chunked.offsets.append(start)
    return chunked


# -- consents and keys ----------------------------------------------------------------------


def record_consent(user_id: str, purpose: str, state: str, source: str,
                   text_version: str | None, expires_at: datetime | None) -> Call[ConsentRecord]:
    body = {"purpose": purpose, "state": state, "source": source, "text_version": text_version,
            "expires_at": expires_at.isoformat() if expires_at else None}
    return Call("POST", f"/v1/users/{_id(user_id)}/consents", _model(ConsentRecord),
                json={k: v for k, v in body.items() if v is not None})


def consents(user_id: str) -> Call[Consents]:
    def decode(response: httpx.Response) -> Consents:
        body = response.json()
        return Consents(
            current={k: ConsentRecord.model_validate(v) for k, v in body["current"].items()},
            history=[ConsentRecord.model_validate(v) for v in body["history"]],
        )

    return Call("GET", f"/v1/users/{_id(user_id)}/consents", decode)


def list_keys() -> Call[list[ApiKey]]:
    return Call("GET", "/v1/keys", lambda r: [ApiKey.model_validate(k) for k in r.json()["keys"]])


def create_key(name: str, scopes: Iterable[Scope | str]) -> Call[CreatedKey]:
    def decode(response: httpx.Response) -> CreatedKey:
        body = response.json()
        return CreatedKey(key=ApiKey.model_validate(body["key"]), secret=body["secret"])

    return Call("POST", "/v1/keys", decode, idempotent=False,
                json={"name": name, "scopes": [str(Scope(s).value) for s in scopes]})


def revoke_key(key_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/keys/{_id(key_id)}", _nothing)


def send_campaign(campaign: Mapping[str, Any]) -> Call[dict[str, Any]]:
    return Call("POST", "/v1/messaging/campaigns", _json, json=_jsonable(campaign))


def campaign_results(name: str) -> Call[dict[str, Any]]:
    return Call("GET", f"/v1/messaging/campaigns/{_id(name)}/results", _json)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def health() -> Call[dict[str, Any]]:
    return Call("GET", "/health", _json)


def ready() -> Call[dict[str, Any]]:
    return Call("GET", "/ready", _json)
