"""Typed networking items in the ordinary catalogue: events, groups, projects and posts.

The type-specific fields live in ``properties`` (the catalogue stays one table):

- ``event``: ``starts_at`` (ISO 8601; required), ``ends_at`` (after the start), ``time_zone``
  (IANA name; a start without an offset is read in it, default UTC), ``capacity`` (places, an
  integer >= 1), ``registered`` (places taken outside Personify, added to the RSVPs counted from
  ``like`` / ``purchase`` events on the item), ``online`` (bool), ``city`` / ``place``,
  ``latitude`` / ``longitude`` (the place, degrees, given together), ``organiser_id``;
- ``group``: its topics are ``tags`` and ``categories``; members are the people with a ``like``
  event on it;
- ``project``: ``required_skills`` (list of strings), ``roles_open`` (an integer >= 0 or a list of
  role names; missing = open);
- ``post`` / ``article`` / ``episode`` (also ``content``): ``author_id``, ``group_id`` (the group
  it was posted in), ``series_id`` (a podcast's series: following = a ``like`` on the series
  item), ``url``, ``published_at`` (else ``created_at``).

:func:`problems` is what a write is checked against (the API refuses the record naming the field);
the feed reads the same fields with :func:`event_info` / :func:`project_info` and skips what
does not parse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from personify.domain.items import Item

EVENT = "event"
GROUP = "group"
PROJECT = "project"
CONTENT_TYPES = frozenset({"post", "article", "episode", "content"})
"""Item types shown in the feed's content section."""
NETWORK_TYPES = frozenset({EVENT, GROUP, PROJECT, *CONTENT_TYPES})

EARTH_RADIUS_KM = 6371.0
Problem = tuple[str, str, str]
"""``(field, message, accepted)``."""


@dataclass(frozen=True, slots=True)
class EventInfo:
    starts_at: datetime
    ends_at: datetime | None
    time_zone: str
    capacity: int | None
    registered: int
    online: bool
    city: str | None
    organiser_id: str | None
    place: tuple[float, float] | None = None
    """(latitude, longitude) of the venue, when given."""


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    required_skills: tuple[str, ...]
    roles_open: int | None
    """None: not stated (treated as open)."""
    roles: tuple[str, ...]


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _when(value: Any, zone: ZoneInfo) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def coordinates(props: dict[str, Any]) -> tuple[float, float] | None:
    """``(latitude, longitude)`` from ``props`` when both are valid numbers, else None."""
    lat, lon = props.get("latitude"), props.get("longitude")
    if not (isinstance(lat, (int, float)) and isinstance(lon, (int, float))
            and _number(lat) and _number(lon)):
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    return float(lat), float(lon)


def _number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance between two (latitude, longitude) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def event_problems(props: dict[str, Any], now: datetime | None) -> list[Problem]:
    out: list[Problem] = []
    tz_name = props.get("time_zone", "UTC")
    zone = _zone(tz_name)
    if zone is None:
        out.append(("properties.time_zone", f"unknown time zone {tz_name!r}",
                    "an IANA time zone name such as 'Europe/Berlin' (default UTC)"))
        zone = ZoneInfo("UTC")
    if "starts_at" not in props:
        out.append(("properties.starts_at", "an event needs its start time",
                    "an ISO 8601 date-time, e.g. 2027-03-01T18:00:00+01:00"))
        starts = None
    else:
        starts = _when(props["starts_at"], zone)
        if starts is None:
            out.append(("properties.starts_at", f"not a date-time: {props['starts_at']!r}",
                        "an ISO 8601 date-time, e.g. 2027-03-01T18:00:00+01:00"))
        elif now is not None and starts <= now:
            out.append(("properties.starts_at",
                        f"the event starts in the past ({starts.isoformat()} <= {now.isoformat()})",
                        "a start time in the future"))
    if props.get("ends_at") is not None:
        ends = _when(props["ends_at"], zone)
        if ends is None:
            out.append(("properties.ends_at", f"not a date-time: {props['ends_at']!r}",
                        "an ISO 8601 date-time after starts_at"))
        elif starts is not None and ends <= starts:
            out.append(("properties.ends_at",
                        f"the event ends ({ends.isoformat()}) before it starts "
                        f"({starts.isoformat()})", "a date-time after starts_at"))
    for name, low in (("capacity", 1), ("registered", 0)):
        if props.get(name) is not None:
            value = _count(props[name])
            if value is None or value < low:
                out.append((f"properties.{name}", f"{name} must be an integer >= {low}",
                            f"an integer >= {low}"))
    if props.get("online") is not None and not isinstance(props["online"], bool):
        out.append(("properties.online", "online must be true or false", "a boolean"))
    for name, limit, other in (("latitude", 90.0, "longitude"), ("longitude", 180.0, "latitude")):
        value = props.get(name)
        accepted = f"a number of degrees from -{limit:g} to {limit:g}, given with {other}"
        if value is None:
            if props.get(other) is not None:
                out.append((f"properties.{name}", f"{other} was given without {name}", accepted))
        elif not _number(value) or not -limit <= float(value) <= limit:
            out.append((f"properties.{name}", f"{name} {value!r} is not a number of degrees "
                        f"from -{limit:g} to {limit:g}", accepted))
    return out


def project_problems(props: dict[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    skills = props.get("required_skills")
    if skills is not None and (_strings(skills) is None or not all(s.strip() for s in skills)):
        out.append(("properties.required_skills", "required_skills must be a list of names",
                    "a list of non-empty strings"))
    roles = props.get("roles_open")
    count = _count(roles)
    if roles is not None and _strings(roles) is None and (count is None or count < 0):
        out.append(("properties.roles_open", "roles_open must be a count or a list of roles",
                    "an integer >= 0 or a list of role names"))
    return out


def content_problems(props: dict[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    for name in ("group_id", "series_id", "url"):
        if props.get(name) is not None and not isinstance(props[name], str):
            out.append((f"properties.{name}", f"{name} must be a string", "a string"))
    if props.get("published_at") is not None and _when(props["published_at"], ZoneInfo("UTC")) \
            is None:
        out.append(("properties.published_at", "not a date-time", "an ISO 8601 date-time"))
    return out


def problems(item: Item, now: datetime | None) -> list[Problem]:
    """What is wrong with a networking item (none for other types). ``now`` given: an event
    must start after it (a write); None: only the shape is checked."""
    props = item.properties
    if item.type == EVENT:
        return event_problems(props, now)
    if item.type == PROJECT:
        return project_problems(props)
    if item.type in CONTENT_TYPES:
        return content_problems(props)
    return []


def event_info(item: Item) -> EventInfo | None:
    """The event's fields, or None when they do not parse."""
    props = item.properties
    if event_problems(props, None):
        return None
    zone_name = str(props.get("time_zone", "UTC"))
    zone = ZoneInfo(zone_name)
    starts = _when(props["starts_at"], zone)
    assert starts is not None
    ends = _when(props.get("ends_at"), zone) if props.get("ends_at") is not None else None
    city = props.get("city") or props.get("place")
    organiser = props.get("organiser_id")
    return EventInfo(
        starts_at=starts, ends_at=ends, time_zone=zone_name,
        capacity=_count(props.get("capacity")), registered=_count(props.get("registered")) or 0,
        online=props.get("online") is True, city=city if isinstance(city, str) else None,
        organiser_id=organiser if isinstance(organiser, str) else None,
        place=coordinates(props),
    )


def project_info(item: Item) -> ProjectInfo | None:
    props = item.properties
    if project_problems(props):
        return None
    skills = tuple(s.strip().lower() for s in _strings(props.get("required_skills")) or [])
    roles = props.get("roles_open")
    names = tuple(_strings(roles) or ())
    count = len(names) if _strings(roles) is not None else _count(roles)
    return ProjectInfo(required_skills=skills, roles_open=count, roles=names)


def published(item: Item) -> datetime | None:
    value = item.properties.get("published_at")
    if value is not None:
        moment = _when(value, ZoneInfo("UTC"))
        if moment is not None:
            return moment
    return item.created_at if item.created_at is None or item.created_at.tzinfo else \
        item.created_at.replace(tzinfo=UTC)


def topics(item: Item) -> set[str]:
    return {t.lower() for t in [*item.tags, *item.categories] if t}
