"""Events: small immutable records of what people do, linked to what was shown to them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from personify.domain import limits
from personify.domain._fields import (
    EventText,
    Identifier,
    Name,
    Price,
    Properties,
    Quantity,
    ShortText,
    SignedAmount,
)


class EventType(StrEnum):
    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    PURCHASE = "purchase"
    RETURN = "return"
    RATING = "rating"
    LIKE = "like"
    DISLIKE = "dislike"
    NOT_INTERESTED = "not_interested"
    SHARE = "share"
    SEARCH = "search"
    DWELL = "dwell"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    MESSAGE_SENT = "message_sent"
    PUSH_OPEN = "push_open"
    IMPRESSION = "impression"
    CONVERSION = "conversion"
    PAGE = "page"
    SCREEN = "screen"
    # professional networking: person -> person (the other person in properties.person_id)
    CONNECTION_REQUEST = "connection_request"
    CONNECTION_ACCEPT = "connection_accept"
    CONNECTION_DECLINE = "connection_decline"
    FOLLOW = "follow"
    MESSAGE = "message"
    REPLY = "reply"
    ENDORSEMENT = "endorsement"
    BLOCK = "block"
    MUTE = "mute"
    UNBLOCK = "unblock"
    UNMUTE = "unmute"
    INTRODUCTION_REQUEST = "introduction_request"
    INTRODUCTION_ACCEPT = "introduction_accept"
    INTRODUCTION_DECLINE = "introduction_decline"
    # what a person wrote (in ``text``): about an item when item_id is given, else in general
    REVIEW = "review"
    COMMENT = "comment"


BUILTIN_EVENT_TYPES: frozenset[str] = frozenset(t.value for t in EventType)
ITEM_EVENT_TYPES: frozenset[str] = frozenset(
    {
        EventType.VIEW,
        EventType.CLICK,
        EventType.ADD_TO_CART,
        EventType.REMOVE_FROM_CART,
        EventType.PURCHASE,
        EventType.RETURN,
        EventType.RATING,
        EventType.LIKE,
        EventType.DISLIKE,
        EventType.NOT_INTERESTED,
        EventType.SHARE,
        EventType.IMPRESSION,
    }
)
"""Event types that are about one item and therefore need ``item_id``."""
PERSON_EVENT_TYPES: frozenset[str] = frozenset(
    {
        EventType.CONNECTION_REQUEST,
        EventType.CONNECTION_ACCEPT,
        EventType.CONNECTION_DECLINE,
        EventType.FOLLOW,
        EventType.MESSAGE,
        EventType.REPLY,
        EventType.ENDORSEMENT,
        EventType.BLOCK,
        EventType.MUTE,
        EventType.UNBLOCK,
        EventType.UNMUTE,
        EventType.INTRODUCTION_REQUEST,
        EventType.INTRODUCTION_ACCEPT,
        EventType.INTRODUCTION_DECLINE,
    }
)
"""Event types from one person to another: they need ``user_id`` and ``properties.person_id``
(optional ``properties.thread``, ``properties.topics`` (a list) and ``properties.offered``)."""


class Channel(StrEnum):
    WEB = "web"
    APP = "app"
    EMAIL = "email"
    PUSH = "push"
    CHAT = "chat"
    OFFLINE = "offline"
    ADS = "ads"


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    country: ShortText | None = None
    region: ShortText | None = None
    city: ShortText | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    longitude: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)


WeatherCondition = Literal["clear", "clouds", "fog", "drizzle", "rain", "snow", "thunderstorm"]


class Weather(BaseModel):
    """The weather where the person is, as the client (or a configured provider) knows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    condition: WeatherCondition | None = None
    temperature_c: float | None = Field(default=None, ge=-90, le=60)
    precipitation_mm: float | None = Field(default=None, ge=0, le=500)
    wind_kmh: float | None = Field(default=None, ge=0, le=500)


class Context(BaseModel):
    """Where and how the event happened (device, channel, place, local time, weather);
    ``extra`` carries any other client context."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: ShortText | None = None
    channel: Name | None = None
    page: ShortText | None = None
    location: Location | None = None
    locale: ShortText | None = None
    local_time: datetime | None = None
    weather: Weather | None = None
    extra: Properties = Field(default_factory=dict)


class Event(BaseModel):
    """One thing a person did. ``event_id`` is the client's idempotency key.

    ``recommendation_id`` links a click / purchase / impression to the response that showed the
    item, so CTR, experiments and ranker training read one log.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Identifier
    type: Name
    user_id: Identifier | None = None
    anonymous_id: Identifier | None = None
    item_id: Identifier | None = None
    item_ids: list[Identifier] | None = Field(
        default=None, max_length=200, description="impressions: the items shown, in order"
    )
    value: SignedAmount | None = None
    quantity: Quantity | None = None
    price: Price | None = None
    currency: ShortText | None = None
    order_id: Identifier | None = None
    query: ShortText | None = None
    timestamp: datetime
    received_at: datetime | None = None
    context: Context = Field(default_factory=Context)
    recommendation_id: Identifier | None = None
    properties: Properties = Field(default_factory=dict)
    text: EventText | None = Field(
        default=None,
        description="what the person wrote (review, comment, message, reply), up to "
        f"{limits.MAX_EVENT_TEXT} characters; language, sentiment, emotions and keywords are "
        "read from it for their insights",
    )

    @field_validator("timestamp", "received_at")
    @classmethod
    def _aware_utc(cls, value: datetime | None) -> datetime | None:
        if value is None or value.tzinfo is UTC:  # the server's own received_at: nothing to do
            return value
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _who(self) -> Event:
        if self.user_id is None and self.anonymous_id is None:
            raise PydanticCustomError(
                "missing_subject", "an event needs user_id or anonymous_id (or both)"
            )
        return self

    @property
    def subject(self) -> str:
        """The id the event counts for: the user id when known, else the anonymous id."""
        return self.user_id if self.user_id is not None else f"anon:{self.anonymous_id}"


MAX_EVENT_TYPE_WEIGHT = 100.0
"""The largest training weight (in absolute value) a declared event type may carry."""
MAX_DECLARED_EVENT_TYPES = 200
"""How many event types one tenant may declare."""


class EventTypeDefinition(BaseModel):
    """A tenant's own event type, declared through ``PUT /v1/event-types/{name}`` or
    ``personify event-types put``: what it means and how much it counts when training.

    ``weight`` is the training weight of one event (a purchase counts 8, a view 1, a dislike
    -4); ``None`` stores and accepts the events without using them as feedback. The online
    state counts an event with a positive weight in the tenant's live popularity and
    co-occurrence with that weight (a view counts 1 there), from the next batch on.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: ShortText | None = Field(
        default=None, description="what the event means, for people reading the log"
    )
    weight: float | None = Field(
        default=None, ge=-MAX_EVENT_TYPE_WEIGHT, le=MAX_EVENT_TYPE_WEIGHT, allow_inf_nan=False,
        description="training weight of one event (negative = negative feedback; null = "
        "stored, not used as feedback)",
    )
    needs_item: bool = Field(
        default=False, description="events of this type must name item_id (about one item)"
    )


def check_custom_type_name(name: str) -> str:
    """``name`` if it can be a declared event type (a machine name that no built-in type has),
    else :class:`~personify.domain.errors.InvalidInput` naming the field ``name``."""
    import re

    from personify.domain.errors import InvalidInput

    accepted = (f"1-{limits.MAX_NAME_LENGTH} characters: letters, digits, '_ . : -' "
                "(not starting with '.', ':' or '-'), not a built-in type")
    if not isinstance(name, str) or not re.fullmatch(
        r"[A-Za-z0-9_][A-Za-z0-9_.:-]*", name
    ) or len(name) > limits.MAX_NAME_LENGTH:
        raise InvalidInput(f"invalid event type name {name!r}", field="name", accepted=accepted)
    if name in BUILTIN_EVENT_TYPES:
        raise InvalidInput(
            f"{name!r} is a built-in event type; its meaning and weight are fixed",
            field="name", accepted=accepted,
        )
    return name


DeclaredTypes = Callable[[str], Mapping[str, EventTypeDefinition]]
"""``tenant -> its declared event types`` (a cached read of the definitions store)."""


class EventTypes:
    """The event types one installation accepts: the built-in ones, the custom types of the
    settings (every tenant) and, with ``declared``, each tenant's own declared types."""

    def __init__(self, custom: Iterable[str] = (), *, declared: DeclaredTypes | None = None
                 ) -> None:
        self.custom = frozenset(custom)
        self.accepted = BUILTIN_EVENT_TYPES | self.custom
        self.declared = declared

    def of_tenant(self, tenant: str | None) -> Mapping[str, EventTypeDefinition]:
        """The types ``tenant`` declared (empty without a declared-types reader)."""
        if tenant is None or self.declared is None:
            return {}
        return self.declared(tenant)

    def check(
        self, event: Event, *, now: datetime | None = None, tenant: str | None = None
    ) -> list[tuple[str, str, str]]:
        """Return the problems of an otherwise well-formed event as (field, message, accepted)."""
        problems: list[tuple[str, str, str]] = []
        declared = self.of_tenant(tenant) if event.type not in self.accepted else {}
        definition = declared.get(event.type)
        if event.type not in self.accepted and definition is None:
            problems.append(
                (
                    "type",
                    f"unknown event type {event.type!r}",
                    "one of " + ", ".join(sorted(self.accepted | set(declared)))
                    + " (declare your own with PUT /v1/event-types/{name} or "
                    "`personify event-types put`)",
                )
            )
        needs_item = event.type in ITEM_EVENT_TYPES or (
            definition is not None and definition.needs_item
        )
        if needs_item and event.item_id is None and not (
            event.type == EventType.IMPRESSION and event.item_ids
        ):
            problems.append(
                ("item_id", f"event type {event.type!r} needs item_id", "a catalogue item id")
            )
        if event.type in PERSON_EVENT_TYPES:
            problems.extend(_person_event_problems(event))
        now = now or datetime.now(UTC)
        if event.timestamp > now + limits.FUTURE_TOLERANCE:
            problems.append(
                (
                    "timestamp",
                    f"timestamp {event.timestamp.isoformat()} is in the future",
                    f"at most {limits.FUTURE_TOLERANCE} ahead of the server clock",
                )
            )
        if event.timestamp.year < limits.OLDEST_TIMESTAMP_YEAR:
            problems.append(
                (
                    "timestamp",
                    f"timestamp {event.timestamp.isoformat()} is absurdly old",
                    f"a time after {limits.OLDEST_TIMESTAMP_YEAR}-01-01",
                )
            )
        return problems


def _person_event_problems(event: Event) -> list[tuple[str, str, str]]:
    other = event.properties.get("person_id")
    if event.user_id is None:
        return [("user_id", f"event type {event.type!r} needs user_id", "the acting user's id")]
    if not isinstance(other, str) or not other.strip():
        return [(
            "properties.person_id",
            f"event type {event.type!r} needs properties.person_id",
            "the id of the other person",
        )]
    if other == event.user_id:
        return [("properties.person_id", "a person cannot act towards themselves",
                 "another person's id")]
    topics = event.properties.get("topics")
    if topics is not None and not (
        isinstance(topics, list) and all(isinstance(t, str) for t in topics)
    ):
        return [("properties.topics", "topics must be a list of strings", "a list of strings")]
    offered = event.properties.get("offered")
    if offered is not None and not isinstance(offered, bool):
        return [("properties.offered", "offered must be true or false", "a boolean")]
    return []
