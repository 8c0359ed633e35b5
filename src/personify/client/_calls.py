"""The HTTP calls of the API, described once and executed by both the sync and the async
client. Each call is an :class:`Endpoint`: its method and route (the OpenAPI path), whether a
repeat is safe, and a builder that turns the method's arguments into the body, the query and
the decoder of the answer. :class:`Endpoints` lists them; ``PersonifyClient`` and
``AsyncPersonifyClient`` inherit it and only differ in how they run a call (blocking or
awaited), so every method exists on both with the same signature and documentation. Error
answers become ``personify.domain.errors`` exceptions naming the field."""

from __future__ import annotations

import contextlib
import functools
import re
import uuid
from collections.abc import (
    Callable,
    Collection,
    Coroutine,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, ParamSpec, TypeVar, overload
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from personify.client._retry import RetryPolicy
from personify.client.results import (
    Assignments,
    BulkResult,
    Consents,
    CreatedKey,
    Decision,
    ErasureReceipt,
    EventAck,
    Exposure,
    IngestResult,
    Recommendations,
)
from personify.domain import errors
from personify.domain.consents import ConsentRecord
from personify.domain.events import Event
from personify.domain.items import Item, ItemPatch
from personify.domain.keys import ApiKey, Scope
from personify.domain.limits import MAX_BATCH_EVENTS, MAX_BATCH_RECORDS
from personify.domain.privacy import Preferences
from personify.domain.users import User, UserPatch

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")

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
    """One request and the decoder of its successful answer. A builder leaves ``method`` and
    ``path`` empty and names the route's path parameters in ``args``; its :class:`Endpoint`
    fills them in from the route it declares."""

    decode: Callable[[httpx.Response], T]
    args: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    params: Mapping[str, Any] | None = None
    method: str = ""
    path: str = ""
    idempotent: bool = True
    """Safe to repeat after a lost answer."""
    headers: Mapping[str, str] | None = None
    """Headers of this call; a write's ``Idempotency-Key``, the same on every retry."""


@dataclass
class Chunked(Generic[T]):
    """A batch split into calls of at most the server's limit; ``offsets[i]`` is the index of
    the first record of ``calls[i]``; ``start`` makes the empty result that ``merge`` adds
    each answer to (rejection indexes shifted by the offset)."""

    start: Callable[[], T]
    merge: Callable[[T, Any, int], None]
    calls: list[Call[Any]] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)


Plan = Call[T] | Chunked[T]


Reply = httpx.Response | httpx.TransportError | None
"""What a client sends back into a :func:`conversation`: the answer to the call it was given
(or the transport error that prevented one), or None after waiting."""


def conversation(plan: Plan[T], retry: RetryPolicy) -> Generator[Call[Any] | float, Reply, T]:
    """Everything about running a plan but the I/O, shared by both clients: it yields a
    :class:`Call` to send (answer with the response or the transport error) or the seconds to
    wait before the next attempt (answer None), and returns the decoded result. Chunks are sent
    in order and merged; retries follow ``retry`` and the call's idempotency; an error answer
    raises its ``personify.domain.errors`` exception."""
    if isinstance(plan, Chunked):
        result = plan.start()
        for call, offset in zip(plan.calls, plan.offsets, strict=True):
            plan.merge(result, (yield from _attempts(call, retry)), offset)
        return result
    return (yield from _attempts(plan, retry))


def _attempts(call: Call[T], retry: RetryPolicy) -> Generator[Call[Any] | float, Reply, T]:
    attempt = 0
    while True:
        reply = yield call
        if isinstance(reply, httpx.TransportError):
            if not retry.should_retry(attempt, error=reply, idempotent=call.idempotent):
                raise reply
            wait = retry.delay(attempt)
        elif reply is None:
            raise RuntimeError("a call was answered with nothing")
        elif reply.is_success:
            return call.decode(reply)
        elif retry.should_retry(attempt, status=reply.status_code, idempotent=call.idempotent) or (
            _still_running(call, reply) and attempt < retry.retries
        ):
            wait = retry.delay(attempt, reply.headers.get("retry-after"))
        else:
            raise error_from(reply)
        yield wait
        attempt += 1


IDEMPOTENCY_HEADER = "Idempotency-Key"
KEYED_METHODS = frozenset({"POST", "PATCH"})
UNKEYED_ROUTES = frozenset({"/v1/keys"})
"""The server refuses a key there: the answer carries a secret it never stores."""


def _still_running(call: Call[Any], reply: httpx.Response) -> bool:
    """A 409 saying the first attempt with this call's ``Idempotency-Key`` has not answered
    yet (the client gave up waiting for it): worth asking again."""
    if reply.status_code != 409 or not call.headers or IDEMPOTENCY_HEADER not in call.headers:
        return False
    try:
        return bool(reply.json()["error"].get("field") == IDEMPOTENCY_HEADER)
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


class SyncRunner:
    """Runs a plan and blocks (``PersonifyClient``)."""

    def _run(self, plan: Plan[T]) -> T:
        raise NotImplementedError


class AsyncRunner:
    """Runs a plan on the event loop (``AsyncPersonifyClient``)."""

    async def _run(self, plan: Plan[T]) -> T:
        raise NotImplementedError


class Endpoint(Generic[P, T]):
    """One route of the API as a client method: called on the class it builds the plan
    (``Endpoints.get_user("ana")``), read from a client it is the method that runs it."""

    def __init__(self, method: str, route: str, build: Callable[P, Plan[T]],
                 idempotent: bool, read: bool = False) -> None:
        self.method, self.route, self.build, self.idempotent = method, route, build, idempotent
        self.keyed = method in KEYED_METHODS and not read and route not in UNKEYED_ROUTES
        """Each call carries a fresh ``Idempotency-Key`` (kept across its retries), so the
        server does a retried write once and the call is safe to repeat."""
        self.path_args = tuple(re.findall(r"{(\w+)}", route))
        functools.update_wrapper(self, build)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Plan[T]:
        plan = self.build(*args, **kwargs)
        if isinstance(plan, Chunked):
            plan.calls = [self._place(call) for call in plan.calls]
            return plan
        return self._place(plan)

    def _place(self, call: Call[R]) -> Call[R]:
        if set(call.args) != set(self.path_args):
            raise TypeError(f"{self.route} needs {self.path_args}, got {sorted(call.args)}")
        path = self.route.format(**{k: quote(str(v), safe="") for k, v in call.args.items()})
        if self.keyed:
            headers = {**(call.headers or {}), IDEMPOTENCY_HEADER: uuid.uuid4().hex}
            return replace(call, method=self.method, path=path, idempotent=True,
                           headers=headers)
        return replace(call, method=self.method, path=path, idempotent=self.idempotent)

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Endpoint[P, T]: ...
    @overload
    def __get__(self, obj: SyncRunner, owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, obj: AsyncRunner, owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, obj: Any, owner: Any) -> Any:
        if obj is None:
            return self
        if isinstance(obj, AsyncRunner):

            @functools.wraps(self.build)
            async def awaited(*args: Any, **kwargs: Any) -> Any:
                return await obj._run(self(*args, **kwargs))

            return awaited

        @functools.wraps(self.build)
        def method(*args: Any, **kwargs: Any) -> Any:
            return obj._run(self(*args, **kwargs))

        return method


def endpoint(
    method: str, route: str, *, idempotent: bool = True, read: bool = False
) -> Callable[[Callable[P, Plan[T]]], Endpoint[P, T]]:
    """Declare a builder as the client method for ``method route``. ``idempotent=False``
    for calls whose repeat after a lost answer would act twice (they are retried only when
    the request surely did not reach the server) unless an ``Idempotency-Key`` protects them:
    every ``POST`` / ``PATCH`` gets one but those declared ``read=True`` (a POST that only
    computes an answer) and :data:`UNKEYED_ROUTES`."""

    def wrap(build: Callable[P, Plan[T]]) -> Endpoint[P, T]:
        return Endpoint(method, route, build, idempotent, read)

    return wrap


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
    return _jsonable({k: v for k, v in record.items() if k not in exclude})


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _query(**params: Any) -> dict[str, Any]:
    """Query parameters without the unset ones (sequences repeat the name, times ISO 8601)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list | tuple):
            value = [str(v) for v in value]
        out[name] = value
    return out


def _body(**fields: Any) -> dict[str, Any]:
    """A JSON body without the unset fields."""
    return {k: _jsonable(v) for k, v in fields.items() if v is not None}


_SERVER_FIELDS = {"created_at", "updated_at", "received_at"}


# -- health ---------------------------------------------------------------------------------


@endpoint("GET", "/health")
def health() -> Call[dict[str, Any]]:
    """Liveness of the server."""
    return Call(_json)


@endpoint("GET", "/ready")
def ready() -> Call[dict[str, Any]]:
    """Readiness (the database answers); Unavailable when not ready."""
    return Call(_json)


# -- users ----------------------------------------------------------------------------------


@endpoint("PUT", "/v1/users/{user_id}")
def put_user(user: User | Mapping[str, Any]) -> Call[User]:
    """Create or replace a user (idempotent)."""
    user_id = user.user_id if isinstance(user, User) else str(user["user_id"])
    return Call(_model(User), {"user_id": user_id},
                json=_dump(user, exclude={"user_id", *_SERVER_FIELDS}))


@endpoint("PATCH", "/v1/users/{user_id}")
def patch_user(user_id: str, patch: UserPatch | Mapping[str, Any]) -> Call[User]:
    """Change some fields of a user."""
    return Call(_model(User), {"user_id": user_id}, json=_dump(patch))


@endpoint("GET", "/v1/users/{user_id}")
def get_user(user_id: str) -> Call[User]:
    """A user; NotFound when absent."""
    return Call(_model(User), {"user_id": user_id})


@endpoint("DELETE", "/v1/users/{user_id}")
def delete_user(user_id: str) -> Call[ErasureReceipt]:
    """Erase a person: profile, events, consents, preferences, online state and their traces
    in the served model (the receipt says what was removed)."""
    return Call(lambda r: ErasureReceipt.from_json(r.json()), {"user_id": user_id})


@endpoint("GET", "/v1/users")
def list_users(*, query: str | None = None, limit: int = 50, offset: int = 0) -> Call[list[User]]:
    """List or search users."""
    return Call(lambda r: [User.model_validate(u) for u in r.json()["users"]],
                params=_query(query=query or None, limit=limit, offset=offset))


@endpoint("POST", "/v1/users/{user_id}/aliases")
def add_alias(user_id: str, anonymous_id: str) -> Call[User]:
    """Merge an anonymous / session id into a user."""
    return Call(_model(User), {"user_id": user_id}, json={"anonymous_id": anonymous_id})


@endpoint("POST", "/v1/users:bulk")
def bulk_upsert_users(users: Iterable[User | Mapping[str, Any]]) -> Chunked[BulkResult]:
    """Upsert many users (split into requests of at most 10,000); a bad record is rejected
    with its index, the good ones are stored."""
    records = [_dump(u, exclude=_SERVER_FIELDS) for u in users]
    return _chunks(records, MAX_BATCH_RECORDS, BulkResult, BulkResult.merge)


# -- items ----------------------------------------------------------------------------------


@endpoint("PUT", "/v1/items/{item_id}")
def put_item(item: Item | Mapping[str, Any]) -> Call[Item]:
    """Create or replace an item (idempotent)."""
    item_id = item.item_id if isinstance(item, Item) else str(item["item_id"])
    return Call(_model(Item), {"item_id": item_id},
                json=_dump(item, exclude={"item_id", "updated_at"}))


@endpoint("PATCH", "/v1/items/{item_id}")
def patch_item(item_id: str, patch: ItemPatch | Mapping[str, Any]) -> Call[Item]:
    """Change some fields of an item."""
    return Call(_model(Item), {"item_id": item_id}, json=_dump(patch))


@endpoint("GET", "/v1/items/{item_id}")
def get_item(item_id: str) -> Call[Item]:
    """An item; NotFound when absent."""
    return Call(_model(Item), {"item_id": item_id})


@endpoint("DELETE", "/v1/items/{item_id}")
def delete_item(item_id: str) -> Call[None]:
    """Delete an item."""
    return Call(_nothing, {"item_id": item_id})


@endpoint("GET", "/v1/items")
def list_items(*, type: str | None = None, query: str | None = None, limit: int = 50,
               offset: int = 0) -> Call[list[Item]]:
    """List or search items, optionally of one type."""
    return Call(lambda r: [Item.model_validate(i) for i in r.json()["items"]],
                params=_query(type=type or None, query=query or None, limit=limit,
                              offset=offset))


@endpoint("POST", "/v1/items:bulk")
def bulk_upsert_items(items: Iterable[Item | Mapping[str, Any]]) -> Chunked[BulkResult]:
    """Upsert many items (split into requests of at most 10,000)."""
    records = [_dump(i, exclude={"updated_at"}) for i in items]
    return _chunks(records, MAX_BATCH_RECORDS, BulkResult, BulkResult.merge)


# -- events ---------------------------------------------------------------------------------


@endpoint("POST", "/v1/events")
def track(event: Event | Mapping[str, Any]) -> Call[EventAck]:
    """Send one event; a repeated event id is acknowledged as a duplicate (so a retry never
    stores it twice). An event given without ``event_id`` gets a random one here, before the
    first attempt, so its retries are the same event too."""
    return Call(lambda r: EventAck.from_json(r.json()), json=_event_body(event))


@endpoint("POST", "/v1/events/batch")
def send_events(events: Iterable[Event | Mapping[str, Any]]) -> Chunked[IngestResult]:
    """Send events in batches of at most 10,000; rejections keep their index, the good
    events of a batch are stored. Events without ``event_id`` get one as in :meth:`track`."""
    records = [_event_body(e) for e in events]
    return _chunks(records, MAX_BATCH_EVENTS, IngestResult, IngestResult.merge)


def _event_body(event: Event | Mapping[str, Any]) -> Any:
    """The event as JSON, with an idempotency key: its ``event_id``, or a new random one."""
    body = _dump(event, exclude={"received_at"})
    if isinstance(body, dict) and body.get("event_id") is None:
        body["event_id"] = f"py-{uuid.uuid4().hex}"
    return body


@endpoint("GET", "/v1/users/{user_id}/events")
def user_events(user_id: str, *, limit: int = 100, types: Sequence[str] | None = None,
                before: datetime | None = None) -> Call[list[Event]]:
    """A user's events, newest first."""
    return Call(lambda r: [Event.model_validate(e) for e in r.json()["events"]],
                {"user_id": user_id},
                params=_query(limit=limit, type=list(types) if types else None, before=before))


@endpoint("GET", "/v1/event-types")
def event_types(*, builtin: bool = True) -> Call[list[dict[str, Any]]]:
    """Every event type the tenant can send: its own, the configured ones and (unless
    ``builtin=False``) the built-in ones, with their training weights."""
    return Call(lambda r: list(r.json()["event_types"]), params=_query(builtin=builtin))


@endpoint("GET", "/v1/event-types/{name}")
def event_type(name: str) -> Call[dict[str, Any]]:
    """One of the tenant's declared event types."""
    return Call(_json, {"name": name})


@endpoint("PUT", "/v1/event-types/{name}")
def put_event_type(name: str, *, weight: float | None = None, description: str | None = None,
                   needs_item: bool = False) -> Call[dict[str, Any]]:
    """Declare (or redefine) an event type of the tenant's own, accepted from the next request
    without a restart; ``weight`` is its training weight (None: stored, not used as feedback).
    The same declaration again changes nothing."""
    return Call(_json, {"name": name}, json={"weight": weight, "needs_item": needs_item,
                                             **_body(description=description)})


@endpoint("DELETE", "/v1/event-types/{name}")
def delete_event_type(name: str) -> Call[dict[str, Any]]:
    """Stop accepting new events of a declared type (stored ones keep it)."""
    return Call(_json, {"name": name})


def _chunks(records: list[Any], size: int, start: Callable[[], T],
            merge: Callable[[T, Any, int], None]) -> Chunked[T]:
    chunked = Chunked(start, merge)
    for first in range(0, max(len(records), 1), size):
        chunked.calls.append(Call(_json, json=records[first : first + size]))
        chunked.offsets.append(first)
    return chunked


# -- recommendations ------------------------------------------------------------------------


def _recommendations(response: httpx.Response) -> Recommendations:
    return Recommendations.model_validate(response.json())


@endpoint("POST", "/v1/recommendations", read=True)
def recommend(
    user_id: str | None = None,
    *,
    anonymous_id: str | None = None,
    n: int = 10,
    item_types: Sequence[str] | None = None,
    context: Mapping[str, Any] | None = None,
    filters: Mapping[str, Any] | None = None,
    exclude: Mapping[str, Any] | None = None,
    rules: Mapping[str, Any] | None = None,
    diversity: Mapping[str, Any] | None = None,
    repetition: Mapping[str, Any] | None = None,
    sources: Sequence[str] | None = None,
    cold_slots: int | None = None,
    explain: bool = False,
    language: str = "en",
    log_impression: bool = True,
    include_items: bool = True,
) -> Call[Recommendations]:
    """Recommendations for a user or an anonymous visitor with every option of
    ``POST /v1/recommendations`` (filters, exclusions, rules, diversity, repetition, sources,
    ``cold_slots``: places kept for items the model does not know yet; see
    docs/serving.md). ``explain=True`` adds a reason in ``language`` to each item. Quote the
    answer's ``recommendation_id`` on later events to attribute clicks and buys."""
    return Call(_recommendations, json=_body(
        user_id=user_id, anonymous_id=anonymous_id, n=n,
        item_types=list(item_types) if item_types else None, context=context, filters=filters,
        exclude=exclude, rules=rules, diversity=diversity, repetition=repetition,
        sources=list(sources) if sources is not None else None, cold_slots=cold_slots,
        explain=explain, language=language, log_impression=log_impression,
        include_items=include_items))


@endpoint("GET", "/v1/recommendations")
def recommendations(
    user_id: str | None = None,
    *,
    anonymous_id: str | None = None,
    n: int = 10,
    item_types: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    explain: bool = False,
    language: str = "en",
    country: str | None = None,
    city: str | None = None,
    device: str | None = None,
    channel: str | None = None,
    cold_slots: int | None = None,
    include_items: bool = True,
) -> Call[Recommendations]:
    """The simple query-string form of :meth:`recommend` (what a browser snippet asks)."""
    return Call(_recommendations, params=_query(
        user_id=user_id, anonymous_id=anonymous_id, n=n,
        item_type=list(item_types) if item_types else None,
        category=list(categories) if categories else None, explain=explain, language=language,
        country=country, city=city, device=device, channel=channel, cold_slots=cold_slots,
        include_items=include_items))


@endpoint("POST", "/v1/recommendations/rerank", read=True)
def rerank(
    item_ids: Sequence[str],
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    context: Mapping[str, Any] | None = None,
    explain: bool = False,
    language: str = "en",
) -> Call[Recommendations]:
    """Personally re-rank a list the caller supplies (search results, a category page)."""
    return Call(_recommendations, json=_body(
        item_ids=list(item_ids), user_id=user_id, anonymous_id=anonymous_id, context=context,
        explain=explain, language=language))


@endpoint("GET", "/v1/items/{item_id}/similar")
def similar(item_id: str, *, n: int = 10, user_id: str | None = None, explain: bool = False,
            language: str = "en") -> Call[Recommendations]:
    """Items similar to one item (content-based for a new item), optionally re-ranked for a
    user."""
    return Call(_recommendations, {"item_id": item_id},
                params=_query(n=n, user_id=user_id, explain=explain, language=language))


@endpoint("GET", "/v1/items/{item_id}/bought-together")
def bought_together(item_id: str, *, n: int = 10, user_id: str | None = None,
                    explain: bool = False, language: str = "en") -> Call[Recommendations]:
    """Items most often bought in the same baskets as one item."""
    return Call(_recommendations, {"item_id": item_id},
                params=_query(n=n, user_id=user_id, explain=explain, language=language))


@endpoint("POST", "/v1/recommendations/session", read=True)
def recommend_session(
    items: Sequence[str | Mapping[str, Any]],
    *,
    n: int = 10,
    widget: str | None = None,
    context: Mapping[str, Any] | None = None,
    item_types: Sequence[str] | None = None,
    filters: Mapping[str, Any] | None = None,
    explain: bool | None = None,
    language: str | None = None,
    include_items: bool | None = None,
) -> Call[Recommendations]:
    """Recommendations from the current visit only (item ids, or ``{"item_id", "type",
    "timestamp"}`` dicts, oldest first); the server stores nothing about the visitor."""
    visit = [{"item_id": i} if isinstance(i, str) else dict(i) for i in items]
    return Call(_recommendations, json={"items": _jsonable(visit), **_body(
        n=n, widget=widget, context=context,
        item_types=list(item_types) if item_types else None, filters=filters, explain=explain,
        language=language, include_items=include_items)})


@endpoint("GET", "/v1/recommendations/{recommendation_id}/explain")
def explain(recommendation_id: str, *, language: str = "en") -> Call[dict[str, Any]]:
    """Why a served answer showed what it showed: per item the sources, the reasons and the
    events of the person they came from."""
    return Call(_json, {"recommendation_id": recommendation_id},
                params=_query(language=language))


# -- pages ----------------------------------------------------------------------------------


@endpoint("GET", "/v1/pages/{name}")
def page(
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
    locale: str | None = None,
    explain: bool | None = None,
    include_items: bool | None = None,
    impressions: str | None = None,
) -> Call[dict[str, Any]]:
    """A personalized page of rows for one person. ``impressions="reported"``: nothing is
    logged now; send an ``impression`` event with ``properties.page_id`` / ``row_id`` for each
    row that comes into view (only those count for the row order)."""
    return Call(_json, {"name": name}, params=_query(
        user_id=user_id, anonymous_id=anonymous_id, language=language,
        rows=list(rows) if rows else None, country=country, city=city, device=device,
        channel=channel, locale=locale, explain=explain, include_items=include_items,
        impressions=impressions))


@endpoint("GET", "/v1/pages")
def pages() -> Call[list[str]]:
    """The tenant's page names (``home`` always)."""
    return Call(lambda r: list(r.json()["pages"]))


@endpoint("GET", "/v1/pages/{name}/definition")
def page_definition(name: str) -> Call[dict[str, Any]]:
    """A page's stored (or built-in) definition."""
    return Call(_json, {"name": name})


@endpoint("PUT", "/v1/pages/{name}/definition")
def put_page(name: str, definition: Mapping[str, Any]) -> Call[dict[str, Any]]:
    """Create or replace a page definition (rows, max_rows, policy)."""
    return Call(_json, {"name": name}, json=_jsonable(definition))


@endpoint("DELETE", "/v1/pages/{name}/definition")
def delete_page(name: str) -> Call[None]:
    """Delete a page definition (``home`` falls back to the built-in one)."""
    return Call(_nothing, {"name": name})


# -- people and introductions ---------------------------------------------------------------


@endpoint("GET", "/v1/users/{user_id}/people")
def people(user_id: str, *, n: int = 10) -> Call[dict[str, Any]]:
    """People this person should meet (reciprocal), with reasons both sides may see."""
    return Call(_json, {"user_id": user_id}, params={"n": n})


@endpoint("GET", "/v1/users/{user_id}/feed")
def feed(user_id: str, *, n: int = 20,
         shares: Mapping[str, float] | None = None) -> Call[dict[str, Any]]:
    """The networking home feed: people, events, groups, projects and posts, each with
    reasons; ``shares`` per section (``people``, ``events``, ``groups``, ``projects``,
    ``content``), e.g. ``{"events": 0.5, "content": 0.5}``."""
    params: dict[str, Any] = {"n": n}
    if shares is not None:
        params["shares"] = ",".join(f"{k}:{v:g}" for k, v in shares.items())
    return Call(_json, {"user_id": user_id}, params=params)


@endpoint("POST", "/v1/introductions")
def request_introduction(from_user_id: str, to_user_id: str, *,
                         source: str = "user") -> Call[dict[str, Any]]:
    """A asks to be introduced to B (double opt-in); a repeat answers the same introduction."""
    return Call(_json, json={"from_user_id": from_user_id, "to_user_id": to_user_id,
                             "source": source})


@endpoint("POST", "/v1/introductions:propose")
def propose_introductions(user_id: str, *, n: int = 3) -> Call[list[dict[str, Any]]]:
    """System-proposed introductions from ``user_id`` to the best of their people list: keeps
    up to ``n`` pending (a repeat answers the same ones)."""
    return Call(_json, json={"user_id": user_id, "n": n})


@endpoint("GET", "/v1/introductions/{introduction_id}")
def introduction(introduction_id: str, *, as_user: str) -> Call[dict[str, Any]]:
    """An introduction as one of its two people sees it (a decline stays silent to A)."""
    return Call(_json, {"introduction_id": introduction_id}, params={"as_user": as_user})


@endpoint("POST", "/v1/introductions/{introduction_id}/accept")
def accept_introduction(introduction_id: str) -> Call[dict[str, Any]]:
    """B accepts: both get each other's contact."""
    return Call(_json, {"introduction_id": introduction_id})


@endpoint("POST", "/v1/introductions/{introduction_id}/decline")
def decline_introduction(introduction_id: str) -> Call[dict[str, Any]]:
    """B declines: final, and A is not told."""
    return Call(_json, {"introduction_id": introduction_id})


@endpoint("GET", "/v1/introductions/kpi")
def introduction_kpi() -> Call[dict[str, Any]]:
    """Introductions requested, accepted, declined, expired; the acceptance rate."""
    return Call(_json)


# -- consents, preferences, export, erasure ------------------------------------------------


@endpoint("POST", "/v1/users/{user_id}/consents", idempotent=False)
def record_consent(user_id: str, purpose: str, state: str, *, source: str = "api",
                   text_version: str | None = None,
                   expires_at: datetime | None = None) -> Call[ConsentRecord]:
    """Append a consent record (granted / denied / withdrawn) for one purpose."""
    return Call(_model(ConsentRecord), {"user_id": user_id}, json=_body(
        purpose=purpose, state=state, source=source, text_version=text_version,
        expires_at=expires_at))


@endpoint("POST", "/v1/users/{user_id}/consents/{purpose}:{action}", idempotent=False)
def change_consent(user_id: str, purpose: str, action: str, *, source: str = "api",
                   text_version: str | None = None,
                   expires_at: datetime | None = None) -> Call[ConsentRecord]:
    """``action`` is ``grant``, ``deny`` or ``withdraw`` (the form a consent banner posts)."""
    return Call(_model(ConsentRecord), {"user_id": user_id, "purpose": purpose,
                                        "action": action},
                json=_body(source=source, text_version=text_version, expires_at=expires_at))


@endpoint("GET", "/v1/users/{user_id}/consents")
def consents(user_id: str) -> Call[Consents]:
    """The current consent per purpose and the history."""
    def decode(response: httpx.Response) -> Consents:
        body = response.json()
        return Consents(
            current={k: ConsentRecord.model_validate(v) for k, v in body["current"].items()},
            history=[ConsentRecord.model_validate(v) for v in body["history"]],
        )

    return Call(decode, {"user_id": user_id})


@endpoint("GET", "/v1/users/{user_id}/consent-decisions")
def consent_decisions(user_id: str) -> Call[dict[str, Any]]:
    """Per purpose: allowed or not, and on what basis (a record or the default regime)."""
    return Call(_json, {"user_id": user_id})


@endpoint("GET", "/v1/users/{user_id}/preferences")
def preferences(user_id: str) -> Call[Preferences]:
    """Declared interests and muted items, categories and people."""
    return Call(_model(Preferences), {"user_id": user_id})


@endpoint("PUT", "/v1/users/{user_id}/preferences")
def put_preferences(
    user_id: str, preferences: Preferences | Mapping[str, Any]
) -> Call[Preferences]:
    """Replace a person's preferences (declared interests reach a cold user's first answer)."""
    return Call(_model(Preferences), {"user_id": user_id},
                json=_dump(preferences, exclude={"updated_at"}))


@endpoint("POST", "/v1/users/{user_id}/not-interested")
def not_interested(user_id: str, *, item_id: str | None = None, category: str | None = None,
                   person_id: str | None = None) -> Call[dict[str, Any]]:
    """Mute one item, category or person for this user (exactly one of them)."""
    return Call(_json, {"user_id": user_id},
                json=_body(item_id=item_id, category=category, person_id=person_id))


@endpoint("GET", "/v1/users/{user_id}/export")
def export_user(user_id: str, *, anonymized: bool = False) -> Call[dict[str, Any]]:
    """Everything stored about a person as JSON (GDPR access / portability); ``anonymized``
    pseudonymizes ids and drops personal fields."""
    return Call(_json, {"user_id": user_id},
                params=_query(format="json", anonymized=anonymized))


@endpoint("GET", "/v1/users/{user_id}/export")
def export_user_zip(user_id: str, *, anonymized: bool = False) -> Call[bytes]:
    """The same export as a ZIP archive (JSON and CSV files), as bytes."""
    return Call(lambda r: r.content, {"user_id": user_id},
                params=_query(format="zip", anonymized=anonymized))


@endpoint("POST", "/v1/users:erase")
def erase_users(user_ids: Sequence[str]) -> Call[list[ErasureReceipt]]:
    """Erase up to 1,000 people at once (one receipt each; erasing twice is harmless)."""
    return Call(lambda r: [ErasureReceipt.from_json(x) for x in r.json()["receipts"]],
                json={"user_ids": list(user_ids)})


@endpoint("DELETE", "/v1/anonymous/{anonymous_id}")
def erase_anonymous(anonymous_id: str) -> Call[ErasureReceipt]:
    """Erase a visitor known only by an anonymous id."""
    return Call(lambda r: ErasureReceipt.from_json(r.json()), {"anonymous_id": anonymous_id})


@endpoint("GET", "/v1/privacy/audit")
def audit_log(*, user_id: str | None = None, key_id: str | None = None,
              since: datetime | None = None, limit: int = 100) -> Call[list[dict[str, Any]]]:
    """Who read or changed whose data, newest first."""
    return Call(lambda r: list(r.json()["entries"]),
                params=_query(user_id=user_id, key_id=key_id, since=since, limit=limit))


@endpoint("POST", "/v1/privacy/retention:purge")
def purge_retention(*, audit_days: float | None = None) -> Call[dict[str, Any]]:
    """Delete what is older than the configured retention now (also runs on a schedule)."""
    return Call(_json, params=_query(audit_days=audit_days))


# -- insights, segments, KPIs ---------------------------------------------------------------


@endpoint("GET", "/v1/users/{user_id}/insights")
def insights(user_id: str) -> Call[dict[str, Any]]:
    """A person's computed profile, predictions and segments, with reasons."""
    return Call(_json, {"user_id": user_id})


@endpoint("GET", "/v1/items/{item_id}/insights")
def item_insights(item_id: str) -> Call[dict[str, Any]]:
    """What an item's title and description say: language, sentiment, emotion, keywords and
    topics in the tenant's categories."""
    return Call(_json, {"item_id": item_id})


@endpoint("GET", "/v1/segments")
def segments() -> Call[dict[str, Any]]:
    """The tenant's segments (``segments``) and the fields a rule may use (``fields``)."""
    return Call(_json)


@endpoint("PUT", "/v1/segments/{segment_id}")
def put_segment(segment_id: str, definition: Mapping[str, Any]) -> Call[dict[str, Any]]:
    """Create or replace a segment (a rule over computed fields)."""
    return Call(_json, {"segment_id": segment_id}, json=_jsonable(definition))


@endpoint("GET", "/v1/segments/{segment_id}")
def segment(segment_id: str) -> Call[dict[str, Any]]:
    """One segment and its size."""
    return Call(_json, {"segment_id": segment_id})


@endpoint("DELETE", "/v1/segments/{segment_id}")
def delete_segment(segment_id: str) -> Call[None]:
    """Delete a segment."""
    return Call(_nothing, {"segment_id": segment_id})


@endpoint("GET", "/v1/segments/{segment_id}/members")
def segment_members(segment_id: str, *, limit: int = 1000) -> Call[dict[str, Any]]:
    """The people in a segment."""
    return Call(_json, {"segment_id": segment_id}, params={"limit": limit})


@endpoint("GET", "/v1/segments/{segment_id}/counts")
def segment_counts(segment_id: str, *,
                   since: datetime | None = None) -> Call[list[dict[str, Any]]]:
    """A segment's size over time: stored snapshots (``at``, ``members``), oldest first."""
    return Call(lambda r: list(r.json()["points"]), {"segment_id": segment_id},
                params=_query(since=since))


@endpoint("POST", "/v1/segments/refresh")
def refresh_segments() -> Call[dict[str, Any]]:
    """Recompute every segment's membership now."""
    return Call(_json)


@endpoint("GET", "/v1/kpis")
def kpis(*, group_by: str = "day", since: datetime | None = None, until: datetime | None = None,
         experiment: str | None = None) -> Call[dict[str, Any]]:
    """Business KPIs (CTR, conversion, revenue, e-mails…) from the events of a window, in
    total and per day / variant / channel / source."""
    return Call(_json, params=_query(group_by=group_by, since=since, until=until,
                                     experiment=experiment))


# -- experiments and decisions --------------------------------------------------------------


@endpoint("POST", "/v1/experiments")
def create_experiment(definition: Mapping[str, Any]) -> Call[dict[str, Any]]:
    """Define an experiment (a draft until started); a second definition with the same name
    is a Conflict, so a retry cannot create two."""
    return Call(_json, json=_jsonable(definition))


@endpoint("GET", "/v1/experiments")
def experiments(
    *, layer: str | None = None, status: str | None = None
) -> Call[list[dict[str, Any]]]:
    """The tenant's experiments, optionally of one layer or status."""
    return Call(lambda r: list(r.json()["experiments"]),
                params=_query(layer=layer, status=status))


@endpoint("GET", "/v1/experiments/{name}")
def experiment(name: str) -> Call[dict[str, Any]]:
    """One experiment and how many units were exposed."""
    return Call(_json, {"name": name})


@endpoint("POST", "/v1/experiments/{name}/start")
def start_experiment(name: str) -> Call[dict[str, Any]]:
    """Start assigning (takes a free traffic range of its layer)."""
    return Call(_json, {"name": name})


@endpoint("POST", "/v1/experiments/{name}/stop")
def stop_experiment(name: str) -> Call[dict[str, Any]]:
    """Stop: free its traffic; the report stays readable."""
    return Call(_json, {"name": name})


@endpoint("GET", "/v1/experiments/{name}/report")
def experiment_report(name: str, *, pre_days: float = 14) -> Call[dict[str, Any]]:
    """Verdict, metrics with intervals, lift and the sample-ratio check over exposed units."""
    return Call(_json, {"name": name}, params={"pre_days": pre_days})


@endpoint("GET", "/v1/assignments")
def assignments(
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    country: str | None = None,
    channel: str | None = None,
    segments: Sequence[str] | None = None,
    layer: str | None = None,
) -> Call[Assignments]:
    """The variants this visitor gets (at most one per layer) and their payloads; nothing is
    logged until :meth:`expose`."""
    return Call(_model(Assignments), params=_query(
        user_id=user_id, anonymous_id=anonymous_id, country=country, channel=channel,
        segment=list(segments) if segments else None, layer=layer))


@endpoint("POST", "/v1/exposures")
def expose(experiment: str, *, user_id: str | None = None, anonymous_id: str | None = None,
           variant: str | None = None, recommendation_id: str | None = None,
           timestamp: datetime | None = None) -> Call[Exposure]:
    """Record that the caller served this visitor its variant (the first exposure counts)."""
    return Call(_model(Exposure), json=_body(
        experiment=experiment, user_id=user_id, anonymous_id=anonymous_id, variant=variant,
        recommendation_id=recommendation_id, timestamp=timestamp))


@endpoint("POST", "/v1/decisions", idempotent=False)
def decide(point: str, actions: Sequence[str | Mapping[str, Any]], *, k: int = 1,
           context: Mapping[str, Any] | None = None) -> Call[Decision]:
    """Rank ``k`` of ``actions`` (ids, or ``{"id", "features"}``) for a context with the
    decision point's bandit. Send the ``decision_id`` as ``recommendation_id`` on the reward
    event. Each call is a new decision, so it is not repeated after a lost answer."""
    listed = [{"id": a} if isinstance(a, str) else dict(a) for a in actions]
    return Call(lambda r: Decision.model_validate(r.json()), json=_body(
        point=point, actions=listed, k=k, context=context))


@endpoint("GET", "/v1/decisions")
def decision_points() -> Call[list[str]]:
    """The tenant's decision points."""
    return Call(lambda r: list(r.json()["points"]))


@endpoint("POST", "/v1/decisions/{point}")
def configure_decision_point(point: str, config: Mapping[str, Any]) -> Call[dict[str, Any]]:
    """Configure a decision point (policy, exploration, rewards); resets its learning."""
    return Call(_json, {"point": point}, json=_jsonable(config))


@endpoint("GET", "/v1/decisions/{point}")
def decision_point(point: str) -> Call[dict[str, Any]]:
    """A decision point's configuration and learning state."""
    return Call(_json, {"point": point})


# -- keys -----------------------------------------------------------------------------------


@endpoint("GET", "/v1/keys")
def list_keys() -> Call[list[ApiKey]]:
    """The keys of the caller's tenant."""
    return Call(lambda r: [ApiKey.model_validate(k) for k in r.json()["keys"]])


@endpoint("POST", "/v1/keys", idempotent=False)
def create_key(name: str, scopes: Iterable[Scope | str]) -> Call[CreatedKey]:
    """Create a key; the secret is in the result only (not repeated after a lost answer:
    that would make a second key)."""
    def decode(response: httpx.Response) -> CreatedKey:
        body = response.json()
        return CreatedKey(key=ApiKey.model_validate(body["key"]), secret=body["secret"])

    return Call(decode, json={"name": name, "scopes": [str(Scope(s).value) for s in scopes]})


@endpoint("DELETE", "/v1/keys/{key_id}")
def revoke_key(key_id: str) -> Call[None]:
    """Revoke a key."""
    return Call(_nothing, {"key_id": key_id})


# -- messaging ------------------------------------------------------------------------------


@endpoint("GET", "/v1/messaging/templates")
def templates() -> Call[list[dict[str, Any]]]:
    """The tenant's message templates."""
    return Call(lambda r: list(r.json()["templates"]))


@endpoint("PUT", "/v1/messaging/templates/{name}")
def put_template(name: str, template: Mapping[str, Any]) -> Call[dict[str, Any]]:
    """Create or replace a template (sandboxed Jinja: subject, preheader, html, text)."""
    return Call(_json, {"name": name}, json=_jsonable(template))


@endpoint("GET", "/v1/messaging/templates/{name}")
def template(name: str) -> Call[dict[str, Any]]:
    """One template."""
    return Call(_json, {"name": name})


@endpoint("DELETE", "/v1/messaging/templates/{name}")
def delete_template(name: str) -> Call[None]:
    """Delete a template (refused while a journey or campaign uses it)."""
    return Call(_nothing, {"name": name})


@endpoint("POST", "/v1/messaging/templates/{name}/preview", read=True)
def preview_template(name: str, user_id: str, *, cart_item_ids: Sequence[str] = (),
                     discount_percent: float | None = None,
                     event: Mapping[str, Any] | None = None) -> Call[dict[str, Any]]:
    """Render a template for one person without sending anything."""
    return Call(_json, {"name": name}, json=_body(
        user_id=user_id, cart_item_ids=list(cart_item_ids) or None,
        discount_percent=discount_percent, event=event))


@endpoint("GET", "/v1/messaging/journeys")
def journeys() -> Call[dict[str, Any]]:
    """The tenant's journeys (``journeys``) and the built-in ones (``builtin``)."""
    return Call(_json)


@endpoint("PUT", "/v1/messaging/journeys/{name}")
def put_journey(name: str, definition: Mapping[str, Any], *,
                enabled: bool = True) -> Call[dict[str, Any]]:
    """Create or replace a journey (trigger, steps, re-entry policy)."""
    return Call(_json, {"name": name}, json=_jsonable(definition),
                params=_query(enabled=enabled))


@endpoint("GET", "/v1/messaging/journeys/{name}")
def journey(name: str) -> Call[dict[str, Any]]:
    """One journey and whether it is enabled."""
    return Call(_json, {"name": name})


@endpoint("DELETE", "/v1/messaging/journeys/{name}")
def delete_journey(name: str) -> Call[None]:
    """Delete a defined journey."""
    return Call(_nothing, {"name": name})


@endpoint("POST", "/v1/messaging/journeys/{name}/enable")
def enable_journey(name: str) -> Call[dict[str, Any]]:
    """Enable a journey."""
    return Call(_json, {"name": name})


@endpoint("POST", "/v1/messaging/journeys/{name}/disable")
def disable_journey(name: str) -> Call[dict[str, Any]]:
    """Disable a journey (runs in progress stop at their next step)."""
    return Call(_json, {"name": name})


@endpoint("GET", "/v1/messaging/journeys/{name}/runs/{user_id}")
def journey_run(name: str, user_id: str) -> Call[dict[str, Any]]:
    """Where one person is in a journey."""
    return Call(_json, {"name": name, "user_id": user_id})


@endpoint("GET", "/v1/messaging/journeys/{name}/steps/{step_id}/results")
def journey_step_results(name: str, step_id: str, *, days: float = 90) -> Call[dict[str, Any]]:
    """A journey send step's A/B/n test over the sends of the last ``days``: per variant
    opens, clicks, conversions, revenue per recipient, unsubscribes, and the comparisons with
    the control."""
    return Call(_json, {"name": name, "step_id": step_id}, params={"days": days})


@endpoint("GET", "/v1/messaging/campaigns")
def campaigns() -> Call[list[dict[str, Any]]]:
    """The tenant's campaigns."""
    return Call(lambda r: list(r.json()["campaigns"]))


@endpoint("POST", "/v1/messaging/campaigns")
def send_campaign(campaign: Mapping[str, Any]) -> Call[dict[str, Any]]:
    """Store and schedule a campaign (with ``variants`` an A/B/n test; idempotent per
    person, so a retry sends nobody twice). Returns name, enqueued, variants, decide_at."""
    return Call(_json, json=_jsonable(campaign))


@endpoint("GET", "/v1/messaging/campaigns/{name}/results")
def campaign_results(name: str) -> Call[dict[str, Any]]:
    """A test campaign's analysis: per-variant totals and rates, comparisons with the
    control, verdict and the winner decision."""
    return Call(_json, {"name": name})


@endpoint("GET", "/v1/messaging/outbox")
def outbox() -> Call[dict[str, Any]]:
    """Messages per status in the outbox."""
    return Call(_json)


@endpoint("GET", "/v1/messaging/outbox/{message_id}")
def outbox_message(message_id: str) -> Call[dict[str, Any]]:
    """One message's delivery status and history."""
    return Call(_json, {"message_id": message_id})


@endpoint("GET", "/v1/messaging/channels")
def channels() -> Call[list[dict[str, Any]]]:
    """The tenant's delivery channels (secrets are never answered)."""
    return Call(lambda r: list(r.json()["channels"]))


@endpoint("PUT", "/v1/messaging/channels/{name}")
def put_channel(name: str, channel: Mapping[str, Any]) -> Call[dict[str, Any]]:
    """Create or replace a delivery channel (SMTP, webhook, in-app…)."""
    return Call(_json, {"name": name}, json=_jsonable(channel))


@endpoint("GET", "/v1/messaging/channels/{name}")
def channel(name: str) -> Call[dict[str, Any]]:
    """One channel."""
    return Call(_json, {"name": name})


@endpoint("DELETE", "/v1/messaging/channels/{name}")
def delete_channel(name: str) -> Call[None]:
    """Delete a channel."""
    return Call(_nothing, {"name": name})


@endpoint("GET", "/v1/messaging/inbox/{user_id}")
def inbox(user_id: str, *, unread_only: bool = False, limit: int = 50) -> Call[dict[str, Any]]:
    """A person's in-app inbox, newest first."""
    return Call(_json, {"user_id": user_id},
                params=_query(unread_only=unread_only, limit=limit))


@endpoint("POST", "/v1/messaging/inbox/{user_id}/read")
def mark_read(user_id: str, entry_ids: Sequence[str]) -> Call[dict[str, Any]]:
    """Mark inbox entries read (repeating it changes nothing)."""
    return Call(_json, {"user_id": user_id}, json={"entry_ids": list(entry_ids)})


class Endpoints:
    """Every client method; both clients inherit them (tests/unit/test_client_routes.py keeps
    this list equal to the server's routes)."""

    health = health
    ready = ready
    put_user = put_user
    patch_user = patch_user
    get_user = get_user
    delete_user = delete_user
    list_users = list_users
    add_alias = add_alias
    bulk_upsert_users = bulk_upsert_users
    put_item = put_item
    patch_item = patch_item
    get_item = get_item
    delete_item = delete_item
    list_items = list_items
    bulk_upsert_items = bulk_upsert_items
    track = track
    send_events = send_events
    user_events = user_events
    event_types = event_types
    event_type = event_type
    put_event_type = put_event_type
    delete_event_type = delete_event_type
    recommend = recommend
    recommendations = recommendations
    rerank = rerank
    similar = similar
    bought_together = bought_together
    recommend_session = recommend_session
    explain = explain
    page = page
    pages = pages
    page_definition = page_definition
    put_page = put_page
    delete_page = delete_page
    people = people
    feed = feed
    request_introduction = request_introduction
    propose_introductions = propose_introductions
    introduction = introduction
    accept_introduction = accept_introduction
    decline_introduction = decline_introduction
    introduction_kpi = introduction_kpi
    record_consent = record_consent
    change_consent = change_consent
    consents = consents
    consent_decisions = consent_decisions
    preferences = preferences
    put_preferences = put_preferences
    not_interested = not_interested
    export_user = export_user
    export_user_zip = export_user_zip
    erase_users = erase_users
    erase_anonymous = erase_anonymous
    audit_log = audit_log
    purge_retention = purge_retention
    insights = insights
    item_insights = item_insights
    segments = segments
    put_segment = put_segment
    segment = segment
    delete_segment = delete_segment
    segment_members = segment_members
    segment_counts = segment_counts
    refresh_segments = refresh_segments
    kpis = kpis
    create_experiment = create_experiment
    experiments = experiments
    experiment = experiment
    start_experiment = start_experiment
    stop_experiment = stop_experiment
    experiment_report = experiment_report
    assignments = assignments
    expose = expose
    decide = decide
    decision_points = decision_points
    configure_decision_point = configure_decision_point
    decision_point = decision_point
    list_keys = list_keys
    create_key = create_key
    revoke_key = revoke_key
    templates = templates
    put_template = put_template
    template = template
    delete_template = delete_template
    preview_template = preview_template
    journeys = journeys
    put_journey = put_journey
    journey = journey
    delete_journey = delete_journey
    enable_journey = enable_journey
    disable_journey = disable_journey
    journey_run = journey_run
    journey_step_results = journey_step_results
    campaigns = campaigns
    send_campaign = send_campaign
    campaign_results = campaign_results
    outbox = outbox
    outbox_message = outbox_message
    channels = channels
    put_channel = put_channel
    channel = channel
    delete_channel = delete_channel
    inbox = inbox
    mark_read = mark_read
