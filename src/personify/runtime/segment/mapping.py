"""Translate Segment tracking-spec messages (identify, track, page, screen, alias, group) into
Personify events, profile updates and identity merges.

Pure functions over parsed JSON: no I/O. A message that cannot be mapped becomes a rejection
with its index; it never fails the messages beside it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from personify.domain import limits
from personify.domain.events import EventType
from personify.ingestion import Rejection

DEFAULT_TRACK_MAP: dict[str, str] = {
    "Product Viewed": EventType.VIEW,
    "Product Clicked": EventType.CLICK,
    "Product Added": EventType.ADD_TO_CART,
    "Product Removed": EventType.REMOVE_FROM_CART,
    "Order Completed": EventType.PURCHASE,
    "Order Refunded": EventType.RETURN,
    "Products Searched": EventType.SEARCH,
    "Product List Viewed": EventType.IMPRESSION,
    "Product Shared": EventType.SHARE,
    "Product Reviewed": EventType.RATING,
    "Product Added to Wishlist": EventType.LIKE,
    "Email Opened": EventType.EMAIL_OPEN,
    "Email Link Clicked": EventType.EMAIL_CLICK,
    "Push Notification Tapped": EventType.PUSH_OPEN,
}
"""Segment e-commerce / email / mobile spec names -> Personify event types. Operators extend or
override it (``create_app(..., segment_track_map=...)``)."""

_ORDER_TYPES = {EventType.PURCHASE.value, EventType.RETURN.value}
_ITEM_KEYS = ("product_id", "sku", "id")
_CHANNELS = {"browser": "web", "mobile": "app", "client": "web"}
_PROFILE_TRAITS = {
    "name": "name",
    "email": "email",
    "country": "country",
    "city": "city",
    "timezone": "time_zone",
    "time_zone": "time_zone",
    "language": "language",
    "gender": "gender",
    "birthday": "birthday",
    "birth_year": "birth_year",
    "title": "profession",
    "profession": "profession",
    "industry": "industry",
    "description": "bio",
    "bio": "bio",
    "skills": "skills",
    "interests": "interests",
    "goals": "goals",
}
_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class ProfileUpdate:
    """``identify`` / ``group``: merge these profile fields and properties into ``user_id``."""

    index: int
    user_id: str
    profile: dict[str, Any]
    properties: dict[str, Any]
    anonymous_id: str | None = None
    person_token: str | None = None
    """``context.person_token``: lets a public key change this existing person (security.md)."""


@dataclass(frozen=True)
class AliasMerge:
    """``alias``: events and identity of ``anonymous_id`` (Segment ``previousId``) merge into
    ``user_id``."""

    index: int
    user_id: str
    anonymous_id: str
    person_token: str | None = None


@dataclass
class MappedBatch:
    """What a Segment batch means in Personify terms. ``origins[i]`` is the message index of
    ``events[i]`` (an order becomes one event per product line)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    origins: list[int] = field(default_factory=list)
    profiles: list[ProfileUpdate] = field(default_factory=list)
    aliases: list[AliasMerge] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    declared_types: frozenset[str] = frozenset()
    """The tenant's declared event types, which track names may name directly too."""


def _machine_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _ident(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


def _text(value: Any) -> str | None:
    """A context string, cut to the documented length (context never rejects an event)."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    return str(value)[: limits.MAX_SHORT_TEXT]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _child_id(message_id: str, n: int) -> str:
    child = f"{message_id}:{n}"
    if len(child) <= limits.MAX_ID_LENGTH:
        return child
    return hashlib.sha256(child.encode()).hexdigest()


def scalar_properties(values: Mapping[str, Any], skip: Iterable[str] = ()) -> dict[str, Any]:
    """The scalar (or list-of-scalar) entries of ``values``, at most the documented count;
    nested objects are dropped (they have no place in Personify's typed properties)."""
    skipped = set(skip)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if len(out) >= limits.MAX_PROPERTIES:
            break
        if key in skipped or not isinstance(key, str) or not 0 < len(key) <= limits.MAX_NAME_LENGTH:
            continue
        if value is None or isinstance(value, _SCALARS):
            out[key] = value
        elif isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value):
            out[key] = value[: limits.MAX_LIST_LENGTH]
    return out


class SegmentMapper:
    """Maps Segment messages; ``track_map`` overrides or extends :data:`DEFAULT_TRACK_MAP`, and
    ``accepted_types`` (built-in plus declared custom types) may also be named directly."""

    def __init__(
        self, track_map: Mapping[str, str] | None = None, accepted_types: Iterable[str] = ()
    ) -> None:
        self.track_map = {**DEFAULT_TRACK_MAP, **(track_map or {})}
        self.accepted_types = frozenset(accepted_types)

    def event_type(self, name: str, declared: frozenset[str] = frozenset()) -> str | None:
        """The Personify type of a ``track`` event name, or None when it is not mapped;
        ``declared`` adds the tenant's declared types to the accepted ones."""
        mapped = self.track_map.get(name)
        if mapped is not None:
            return str(mapped)
        if name in self.accepted_types or name in declared:
            return name
        machine = _machine_name(name)
        return machine if machine in self.accepted_types or machine in declared else None

    def map_batch(
        self, messages: Sequence[Any], *, default_type: str | None = None,
        declared_types: Iterable[str] = (),
    ) -> MappedBatch:
        """Map every message; ``default_type`` is the call type of a single-call endpoint,
        ``declared_types`` the tenant's own event types."""
        out = MappedBatch(declared_types=frozenset(declared_types))
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                out.rejected.append(Rejection(index, "invalid_input", None,
                                              "each message must be a JSON object",
                                              "a Segment message object"))
                continue
            kind = str(message.get("type") or default_type or "").lower()
            handler = _HANDLERS.get(kind)
            if handler is None:
                self._reject(out, index, message, "type", f"unknown message type {kind!r}",
                             "identify, track, page, screen, alias or group")
                continue
            handler(self, index, message, out)
        return out

    # -- message kinds ------------------------------------------------------------------------

    def _track(self, index: int, message: dict[str, Any], out: MappedBatch) -> None:
        name = message.get("event")
        properties = message.get("properties") or {}
        if not isinstance(name, str) or not name.strip():
            self._reject(out, index, message, "event", "a track call needs an event name",
                         "a non-empty string")
            return
        if not isinstance(properties, dict):
            self._reject(out, index, message, "properties", "properties must be an object",
                         "a JSON object")
            return
        event_type = self.event_type(name, out.declared_types)
        if event_type is None:
            self._reject(
                out, index, message, "event",
                f"track event {name!r} is not mapped to an event type",
                "a name in the Segment event map (" + ", ".join(sorted(self.track_map))
                + ") or a declared custom event type",
            )
            return
        base = _base_event(message, event_type)
        item_keys = (*_ITEM_KEYS, "price", "quantity", "currency", "order_id", "query",
                     "recommendation_id", "products")
        base["properties"] = scalar_properties(properties, skip=item_keys)
        base.update(_item_fields(properties))
        for key in ("order_id", "recommendation_id", "query"):
            value = _ident(properties.get(key)) if key != "query" else _text(properties.get(key))
            if value is not None:
                base[key] = value
        if "currency" in properties and isinstance(properties["currency"], str):
            base["currency"] = properties["currency"]
        if event_type == EventType.RATING and _number(properties.get("rating")) is not None:
            base["value"] = _number(properties.get("rating"))
        products = properties.get("products")
        if isinstance(products, list) and event_type == EventType.IMPRESSION:
            ids = [_ident(_first(p, _ITEM_KEYS)) for p in products if isinstance(p, dict)]
            base["item_ids"] = [i for i in ids if i is not None][:200]
        if isinstance(products, list) and event_type in _ORDER_TYPES and "item_id" not in base:
            self._order_lines(index, message, base, products, out)
            return
        out.events.append(base)
        out.origins.append(index)

    def _order_lines(self, index: int, message: dict[str, Any], base: dict[str, Any],
                     products: list[Any], out: MappedBatch) -> None:
        lines = [p for p in products if isinstance(p, dict)]
        if not lines:
            self._reject(out, index, message, "properties.products",
                         "an order needs at least one product", "a list of product objects")
            return
        for n, product in enumerate(lines):
            event = {**base, **_item_fields(product), "event_id": _child_id(base["event_id"], n)}
            if "currency" not in event and isinstance(product.get("currency"), str):
                event["currency"] = product["currency"]
            out.events.append(event)
            out.origins.append(index)

    def _page(self, index: int, message: dict[str, Any], out: MappedBatch) -> None:
        self._view_of(index, message, out, EventType.PAGE.value)

    def _screen(self, index: int, message: dict[str, Any], out: MappedBatch) -> None:
        self._view_of(index, message, out, EventType.SCREEN.value)

    def _view_of(self, index: int, message: dict[str, Any], out: MappedBatch, kind: str) -> None:
        properties = message.get("properties") or {}
        if not isinstance(properties, dict):
            properties = {}
        event = _base_event(message, kind)
        extra = {"name": message.get("name"), "category": message.get("category")}
        event["properties"] = scalar_properties(
            {**{k: v for k, v in extra.items() if v is not None}, **properties}
        )
        context = event["context"]
        if "page" not in context:
            page = _text(properties.get("url") or properties.get("path") or message.get("name"))
            if page is not None:
                context["page"] = page
        event.update(_item_fields(properties))
        out.events.append(event)
        out.origins.append(index)

    def _identify(self, index: int, message: dict[str, Any], out: MappedBatch) -> None:
        user_id = _ident(message.get("userId"))
        # Segment puts traits on the message; RudderStack's clients put them in context.traits.
        traits = message.get("traits") or _obj(message.get("context")).get("traits") or {}
        if user_id is None:
            self._reject(out, index, message, "userId",
                         "identify needs userId to store a profile", "a user id")
            return
        if not isinstance(traits, dict):
            self._reject(out, index, message, "traits", "traits must be an object", "a JSON object")
            return
        profile, rest = profile_from_traits(traits)
        out.profiles.append(ProfileUpdate(index, user_id, profile, scalar_properties(rest),
                                          _ident(message.get("anonymousId")),
                                          _person_token(message)))

    def _group(self, index: int, message: dict[str, Any], out: MappedBatch) -> None:
        user_id = _ident(message.get("userId"))
        group_id = _ident(message.get("groupId"))
        if user_id is None or group_id is None:
            self._reject(out, index, message, "userId" if user_id is None else "groupId",
                         "group needs userId and groupId", "a user id and a group id")
            return
        traits = message.get("traits") or {}
        properties: dict[str, Any] = {"group_id": group_id}
        if isinstance(traits, dict) and isinstance(traits.get("name"), str):
            properties["group_name"] = traits["name"][: limits.MAX_SHORT_TEXT]
        out.profiles.append(ProfileUpdate(index, user_id, {}, properties,
                                          person_token=_person_token(message)))

    def _alias(self, index: int, message: dict[str, Any], out: MappedBatch) -> None:
        user_id = _ident(message.get("userId"))
        previous = _ident(message.get("previousId")) or _ident(message.get("anonymousId"))
        if user_id is None or previous is None:
            self._reject(out, index, message, "userId" if user_id is None else "previousId",
                         "alias needs userId and previousId", "the new user id and the old id")
            return
        if previous != user_id:
            out.aliases.append(AliasMerge(index, user_id, previous, _person_token(message)))

    @staticmethod
    def _reject(out: MappedBatch, index: int, message: dict[str, Any], field: str, why: str,
                accepted: str) -> None:
        out.rejected.append(Rejection(index, "invalid_input", field, why, accepted,
                                      _ident(message.get("messageId"))))


_HANDLERS = {
    "track": SegmentMapper._track,
    "page": SegmentMapper._page,
    "screen": SegmentMapper._screen,
    "identify": SegmentMapper._identify,
    "group": SegmentMapper._group,
    "alias": SegmentMapper._alias,
}


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(values: Mapping[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        if values.get(key) not in (None, ""):
            return values[key]
    return None


def _item_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """``item_id`` (from product_id / sku / id), ``price`` and ``quantity`` of a product."""
    out: dict[str, Any] = {}
    item_id = _ident(_first(values, _ITEM_KEYS))
    if item_id is not None:
        out["item_id"] = item_id
    for key in ("price", "quantity"):
        if key in values and values[key] is not None:
            number = _number(values[key])
            out[key] = number if number is not None else values[key]  # bad values get reported
    return out


def message_id(message: Mapping[str, Any]) -> str:
    """Segment's ``messageId`` (the idempotency key), or a hash of the message when absent so a
    re-sent message is still recognised."""
    given = _ident(message.get("messageId"))
    if given is not None:
        return given
    digest = hashlib.sha256(orjson.dumps(message, option=orjson.OPT_SORT_KEYS, default=str))
    return "seg-" + digest.hexdigest()[:40]


def _base_event(message: dict[str, Any], event_type: str) -> dict[str, Any]:
    event: dict[str, Any] = {"event_id": message_id(message), "type": event_type}
    user_id = _ident(message.get("userId"))
    anonymous_id = _ident(message.get("anonymousId"))
    if user_id is not None:
        event["user_id"] = user_id
    if anonymous_id is not None:
        event["anonymous_id"] = anonymous_id
    timestamp = message.get("timestamp") or message.get("originalTimestamp")
    if timestamp is None:
        timestamp = datetime.now(UTC).isoformat()
    event["timestamp"] = timestamp
    context = message.get("context")
    event["context"] = context_from_segment(
        context if isinstance(context, dict) else {}, message.get("channel")
    )
    return event


def context_from_segment(ctx: Mapping[str, Any], channel: Any = None) -> dict[str, Any]:
    """Device, channel, page, locale, location (never the IP address) and campaign tags."""
    out: dict[str, Any] = {}
    device = _obj(ctx.get("device"))
    os_info = _obj(ctx.get("os"))
    device_name = _text(device.get("type") or device.get("model") or os_info.get("name"))
    if device_name:
        out["device"] = device_name
    mapped_channel = _CHANNELS.get(str(channel)) if channel is not None else None
    if mapped_channel is None and isinstance(ctx.get("app"), dict):
        mapped_channel = "app"
    if mapped_channel is not None:
        out["channel"] = mapped_channel
    page = _obj(ctx.get("page"))
    page_text = _text(page.get("url") or page.get("path"))
    if page_text:
        out["page"] = page_text
    locale = _text(ctx.get("locale"))
    if locale:
        out["locale"] = locale
    location = _obj(ctx.get("location"))
    place: dict[str, Any] = {}
    for key in ("country", "region", "city"):
        value = _text(location.get(key))
        if value:
            place[key] = value
    for key in ("latitude", "longitude"):
        number = _number(location.get(key))
        if number is not None:
            place[key] = number
    if place:
        out["location"] = place
    extra: dict[str, Any] = {}
    timezone = _text(ctx.get("timezone"))
    if timezone:
        extra["timezone"] = timezone
    campaign = _obj(ctx.get("campaign"))
    for key in ("source", "medium", "name", "term", "content"):
        value = _text(campaign.get(key))
        if value:
            extra[f"utm_{key}"] = value
    if extra:
        out["extra"] = extra
    return out


def profile_from_traits(traits: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``identify`` traits into Personify profile fields and the remaining properties."""
    profile: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, value in traits.items():
        target = _PROFILE_TRAITS.get(key)
        if target is not None and value is not None:
            profile[target] = value
        elif key not in ("address", "company", "firstName", "lastName", "first_name", "last_name"):
            rest[key] = value
    if "name" not in profile:
        first = traits.get("firstName") or traits.get("first_name")
        last = traits.get("lastName") or traits.get("last_name")
        full = " ".join(str(p) for p in (first, last) if p)
        if full:
            profile["name"] = full
    address = traits.get("address")
    if isinstance(address, dict):
        for key in ("country", "city"):
            if address.get(key) and key not in profile:
                profile[key] = address[key]
    company = traits.get("company")
    if isinstance(company, dict):
        if company.get("industry") and "industry" not in profile:
            profile["industry"] = company["industry"]
        if isinstance(company.get("name"), str):
            rest["company"] = company["name"]
    birthday = profile.get("birthday")
    if isinstance(birthday, str) and len(birthday) >= 10 and birthday[:4].isdigit():
        profile["birthday"] = birthday[:10]
        profile.setdefault("birth_year", int(birthday[:4]))
    return profile, rest


def _person_token(message: dict[str, Any]) -> str | None:
    """The message's ``context.person_token`` (a string), if any."""
    token = _obj(message.get("context")).get("person_token")
    return token if isinstance(token, str) and token else None
