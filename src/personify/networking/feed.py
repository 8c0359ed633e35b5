"""The networking home feed (``GET /v1/users/{id}/feed``): people, events, groups, projects and
content (posts, articles, episodes) in one ranked list, with per-type shares, diversity and
freshness, every entry explained.

Each section ranks its own candidates with type-aware rules, on a 0..1 scale:

- **people**: the reciprocal people recommender (:class:`NetworkingService`), scores rescaled by
  the section's best; its reasons are the ones ``/people`` gives.
- **events**: only upcoming (``starts_at`` after now) and not full (RSVPs + ``registered`` below
  ``capacity``), not already joined; ``0.55 * topic fit + 0.25 * contacts going + 0.2 * soon``
  (``exp(-days / 14)``), times the **time-zone convenience** of its start in the person's time
  zone (:func:`convenience`: 1 from 09:00 to 19:59, 0.8 at 08:00 and 20:00-21:59, 0.5 at 07:00
  and 22:00, 0.2 at night), raised by a fifth when it starts at an hour the person is usually
  active (their activity rhythm: the hours of their last 200 events), and times the **distance**
  factor of an event held in person: ``1 / (1 + km / 50)`` from the person's location
  (``properties.latitude`` / ``longitude`` of their profile) to the venue's (the event's
  ``latitude`` / ``longitude``), else halved when it is in another city than theirs.
- **projects**: only with roles open and skills the person has that the project needs; score is
  the share of its required skills the person has.
- **groups**: not yet joined; ``0.6 * topic fit + 0.4 * contacts in it`` (``n / (n + 2)``); a
  group neither about the person's topics nor holding a contact is not shown.
- **content**: not the person's own, not already liked or disliked; ``0.45 * topic fit +
  0.25 * in one of their groups + 0.2 * by a contact + 0.1 * of a series they follow``, times
  freshness ``max(0.01, 0.5 ** (age_days / 7))``; content matching none of these is not shown;
  the author's name and link come from their profile (``profile_url``), else from the item's
  ``author_name`` / ``author_url``.

Mixing: each section gets ``round(share * n)`` places (largest remainders; a section with too few
candidates gives its places to the others in proportion to their shares); places are filled in
the order that keeps every section closest to its share so far, never the same section three
times in a row while another has candidates left, and content by the same author or group is not
placed next to each other when another candidate of the section is close (within the next 3).

Topic fit: the share of an item's topics (tags and categories) the person is about (their
skills and interests, and the topics they were active on in the network), capped at 1 over
the item's first three topics.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from personify.domain.errors import InvalidInput
from personify.domain.events import Event
from personify.domain.items import Item
from personify.domain.users import User
from personify.networking import items as typed
from personify.networking.service import NetworkingService, PersonRecommendation
from personify.storage.ports import CatalogStore, EventStore, UserStore

Section = Literal["people", "events", "groups", "projects", "content"]
SECTIONS: tuple[Section, ...] = ("people", "events", "groups", "projects", "content")
DEFAULT_SHARES: dict[str, float] = {
    "people": 0.25, "events": 0.2, "groups": 0.15, "projects": 0.15, "content": 0.25,
}
JOIN_TYPES = frozenset({"like", "purchase"})
"""An RSVP to an event, joining a group, following a series: a ``like`` (or a ticket bought)."""
REFUSE_TYPES = frozenset({"dislike", "not_interested"})
SIGNAL_TYPES = sorted(JOIN_TYPES | REFUSE_TYPES)
POOL = 5_000
"""Catalogue items of each type considered per request (read in pages; beyond it, in item id
order, items are not considered)."""
PAGE = 1_000
POOL_TTL_S = 2.0
"""How long a process reuses the catalogue items of a type it read when nothing tells it of a
write: a write through this process drops the copy at once (:meth:`FeedService.items_written`,
called by the catalogue store's write listeners), one made by another process shows within this.
RSVPs, joins and erasures count at once."""
EVENT_SOON_DAYS = 14.0
CONTENT_HALF_LIFE_DAYS = 7.0
FRESHNESS_FLOOR = 0.01
"""Old content keeps its order by relevance (an archive such as the demo's 2018 posts)."""
DISTANCE_SCALE_KM = 50.0
"""An in-person event this far away counts half as much as one next door (1 / (1 + km / 50))."""
RHYTHM_EVENTS = 200
MAX_RUN = 2


class FeedReason(BaseModel):
    kind: str = Field(description="topics | contacts | group | author | series | skills | time | "
                                  "place | places_left | people reasons (shared_topics, ...)")
    text: str


class FeedAuthor(BaseModel):
    user_id: str
    name: str | None = None
    profile_url: str | None = None


class FeedEntry(BaseModel):
    section: Section
    id: str = Field(description="item id, or the person's user id for people")
    type: str = Field(description="the item type (event, group, project, post, ...) or person")
    title: str | None = None
    score: float = Field(description="the entry's score within its section (0..1)")
    reasons: list[FeedReason] = Field(min_length=1)
    url: str | None = None
    author: FeedAuthor | None = Field(
        default=None, description="who wrote it (content), with a link")
    attribution: str | None = Field(
        default=None, description="licence / source line to show with it")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    time_zone: str | None = None
    local_start: str | None = Field(default=None, description="the start in the person's time zone")
    places_left: int | None = None
    person: PersonRecommendation | None = None


class FeedResponse(BaseModel):
    user_id: str
    generated_at: datetime
    shares: dict[str, float] = Field(description="the shares asked for (normalized)")
    counts: dict[str, int] = Field(description="entries per section in this answer")
    entries: list[FeedEntry]
    note: str | None = None


def parse_shares(text: str | None) -> dict[str, float]:
    """``people:0.4,events:0.2`` (sections not named get 0) or None for the defaults."""
    if text is None or not text.strip():
        return dict(DEFAULT_SHARES)
    shares: dict[str, float] = dict.fromkeys(SECTIONS, 0.0)
    accepted = "comma-separated section:weight pairs, sections " + ", ".join(SECTIONS) + \
        ", weights >= 0 with a positive sum, e.g. people:0.4,events:0.6"
    for part in text.split(","):
        name, sep, value = part.strip().partition(":")
        if not sep or name not in shares:
            raise InvalidInput(f"bad share {part.strip()!r}", field="shares", accepted=accepted)
        try:
            weight = float(value)
        except ValueError:
            raise InvalidInput(f"bad weight in {part.strip()!r}", field="shares",
                               accepted=accepted) from None
        if not math.isfinite(weight) or weight < 0:
            raise InvalidInput(f"bad weight in {part.strip()!r}", field="shares",
                               accepted=accepted)
        shares[name] = weight
    total = sum(shares.values())
    if total <= 0:
        raise InvalidInput("the shares sum to 0", field="shares", accepted=accepted)
    return shares


def _normalized(shares: dict[str, float]) -> dict[str, float]:
    total = sum(shares.values())
    return {k: round(v / total, 6) for k, v in shares.items()}


def quotas(shares: dict[str, float], available: dict[str, int], n: int) -> dict[str, int]:
    """Places per section: largest remainders of ``share * n``; places a section cannot fill go
    to the others in proportion to their shares."""
    out = dict.fromkeys(shares, 0)
    left = n
    open_ = {s for s, w in shares.items() if w > 0 and available.get(s, 0) > 0}
    while left > 0 and open_:
        total = sum(shares[s] for s in open_)
        raw = {s: left * shares[s] / total for s in open_}
        give = {s: min(int(raw[s]), available[s] - out[s]) for s in open_}
        rest = left - sum(give.values())
        for s in sorted(open_, key=lambda s: (-(raw[s] - int(raw[s])), s)):
            if rest <= 0:
                break
            if give[s] < available[s] - out[s]:
                give[s] += 1
                rest -= 1
        if sum(give.values()) == 0:
            break
        for s, g in give.items():
            out[s] += g
        left = n - sum(out.values())
        open_ = {s for s in open_ if out[s] < available[s]}
    return out


def interleave(ranked: dict[str, list[FeedEntry]], quota: dict[str, int],
               shares: dict[str, float]) -> list[FeedEntry]:
    """Fill places section by section, keeping each closest to its share, no run longer than
    ``MAX_RUN`` while another section has entries left, no same author / group side by side."""
    queues = {s: list(ranked.get(s, []))[: quota.get(s, 0)] for s in quota}
    placed = dict.fromkeys(quota, 0)
    total_share = sum(shares[s] for s in quota if quota[s]) or 1.0
    out: list[FeedEntry] = []
    while any(queues.values()):
        position = len(out) + 1
        candidates = [s for s, q in queues.items() if q]
        run = [e.section for e in out[-MAX_RUN:]]
        if len(run) == MAX_RUN and len(set(run)) == 1 and len(candidates) > 1:
            candidates = [s for s in candidates if s != run[0]] or candidates

        section = min(candidates, key=lambda s, at=position: (  # type: ignore[misc]
            placed[s] - shares[s] / total_share * at, s))
        queue = queues[section]
        pick = 0
        if out:
            last = out[-1]
            for i, entry in enumerate(queue[:3]):
                if not _alike(entry, last):
                    pick = i
                    break
        out.append(queue.pop(pick))
        placed[section] += 1
    return out


def _alike(a: FeedEntry, b: FeedEntry) -> bool:
    if a.section != b.section:
        return False
    return a.author is not None and b.author is not None and a.author.user_id == b.author.user_id


@dataclass
class Signals:
    """Who joined / RSVP'd / followed which item, and what each person refused (per tenant)."""

    members: dict[str, set[str]] = field(default_factory=dict)
    joined: dict[str, set[str]] = field(default_factory=dict)
    refused: dict[str, set[str]] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        if event.user_id is None or event.item_id is None:
            return
        if event.type in JOIN_TYPES:
            self.members.setdefault(event.item_id, set()).add(event.user_id)
            self.joined.setdefault(event.user_id, set()).add(event.item_id)
        elif event.type in REFUSE_TYPES:
            self.refused.setdefault(event.user_id, set()).add(event.item_id)

    def forget(self, person: str) -> None:
        for item in self.joined.pop(person, set()):
            self.members.get(item, set()).discard(person)
        self.refused.pop(person, None)


@dataclass
class Person:
    """What the feed knows of the asking person."""

    user_id: str
    user: User | None
    topics: dict[str, float]
    skills: set[str]
    contacts: set[str]
    joined: set[str]
    refused: set[str]
    zone: ZoneInfo
    active_hours: set[int]
    location: tuple[float, float] | None = None
    """(latitude, longitude) from the profile's ``properties``, when given."""


def convenience(hour: int) -> float:
    """How convenient an event starting at ``hour`` (the person's local time) is to attend."""
    if 9 <= hour <= 19:
        return 1.0
    if hour in (8, 20, 21):
        return 0.8
    if hour in (7, 22):
        return 0.5
    return 0.2


def fit(person_topics: dict[str, float], item_topics: Sequence[str]) -> tuple[float, list[str]]:
    """Share of the item's topics the person is about (over at most 3), and those topics."""
    shared = [t for t in item_topics if t in person_topics]
    if not item_topics:
        return 0.0, []
    return min(1.0, len(shared) / min(3, len(item_topics))), shared[:3]


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _text(props: dict[str, Any], key: str) -> str | None:
    value = props.get(key)
    return value if isinstance(value, str) else None


class FeedService:
    """One per process, over the networking service (people, the network) and the stores."""

    def __init__(self, networking: NetworkingService, catalog: CatalogStore,
                 events: EventStore, users: UserStore,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 pool_ttl_s: float = POOL_TTL_S) -> None:
        self.networking = networking
        self.catalog = catalog
        self.events = events
        self.users = users
        self.clock = clock
        self._signals: dict[str, Signals] = {}
        self._lock = threading.RLock()
        self.pool_ttl_s = pool_ttl_s
        self._pool: dict[tuple[str, str], tuple[float, int, list[Item]]] = {}
        """(tenant, type) -> (monotonic time read, the tenant's write generation then, items)."""
        self._writes: dict[str, int] = {}
        """tenant -> catalogue writes seen (a copy read before the latest write is stale)."""
        self._topic_cache: dict[int, tuple[Item, list[str]]] = {}
        """id of a pooled item -> (the item, its sorted topics), while it is in the pool."""

    # signals ------------------------------------------------------------------------------

    def signals(self, tenant: str) -> Signals:
        signals = self._signals.get(tenant)
        if signals is None:
            with self._lock:
                signals = self._signals.get(tenant)
                if signals is None:
                    signals = Signals()
                    for event in self.events.scan(tenant, types=SIGNAL_TYPES):
                        signals.add(event)
                    self._signals[tenant] = signals
        return signals

    def on_events(self, tenant: str, events: Sequence[Event]) -> None:
        """Ingestion listener: RSVPs, joins and follows count at once."""
        mine = [e for e in events if e.type in JOIN_TYPES or e.type in REFUSE_TYPES]
        if not mine:
            return
        with self._lock:
            signals = self._signals.get(tenant)
            if signals is not None:
                for event in mine:
                    signals.add(event)

    def forget(self, tenant: str, subjects: Sequence[str]) -> int:
        with self._lock:
            signals = self._signals.get(tenant)
            if signals is not None:
                for person in subjects:
                    signals.forget(person)
        return 0

    # the person ---------------------------------------------------------------------------

    def _person(self, tenant: str, user_id: str, user: User | None) -> Person:
        topics: dict[str, float] = {}
        skills: set[str] = set()
        if user is not None:
            skills = {s.lower() for s in user.profile.skills}
            for t in [*user.profile.skills, *user.profile.interests]:
                topics[t.lower()] = 1.0
        net = self.networking.network(tenant)
        state = net.state.people.get(user_id)
        contacts: set[str] = set()
        if state is not None:
            for t, w in state.top_topics(10).items():
                topics.setdefault(t, min(1.0, w))
            for t, w in state.offers.items():
                if w >= 1.0:
                    skills.add(t)
            contacts |= state.links
        contacts |= {p for pair in net.connected if user_id in pair for p in pair} - {user_id}
        zone = _zone(user.profile.time_zone if user is not None else None)
        hours: dict[int, int] = {}
        for event in self.events.for_user(tenant, user_id, limit=RHYTHM_EVENTS):
            hour = event.timestamp.astimezone(zone).hour
            hours[hour] = hours.get(hour, 0) + 1
        total = sum(hours.values())
        active = {h for h, c in hours.items() if total >= 20 and c / total >= 0.08}
        signals = self.signals(tenant)
        return Person(
            user_id=user_id, user=user, topics=topics, skills=skills, contacts=contacts,
            joined=set(signals.joined.get(user_id, ())),
            refused=set(signals.refused.get(user_id, ())), zone=zone, active_hours=active,
            location=typed.coordinates(user.properties) if user is not None else None,
        )

    # sections -----------------------------------------------------------------------------

    def items_written(self, tenant: str, types: frozenset[str] | None = None) -> None:
        """Catalogue write listener: the tenant's copy of ``types`` (None: every type) is stale;
        the next feed reads the catalogue again (a new event or post shows at once)."""
        with self._lock:
            self._writes[tenant] = self._writes.get(tenant, 0) + 1
            for key in [k for k in self._pool if k[0] == tenant
                        and (types is None or k[1] in types)]:
                for stale in self._pool.pop(key)[2]:
                    self._topic_cache.pop(id(stale), None)

    def _items(self, tenant: str, types: Sequence[str]) -> list[Item]:
        out: list[Item] = []
        for t in types:
            key = (tenant, t)
            cached = self._pool.get(key)
            at = time.monotonic()
            generation = self._writes.get(tenant, 0)
            if (cached is None or at - cached[0] >= self.pool_ttl_s
                    or cached[1] != generation):
                found: list[Item] = []
                for offset in range(0, POOL, PAGE):
                    page = self.catalog.list(tenant, type=t, limit=PAGE, offset=offset)
                    found.extend(i for i in page if i.available and not i.hidden)
                    if len(page) < PAGE:
                        break
                with self._lock:
                    for stale in (cached[2] if cached is not None else ()):
                        self._topic_cache.pop(id(stale), None)
                    cached = (at, generation, found)
                    # a write during the read: this copy answers this request only
                    if self._writes.get(tenant, 0) == generation:
                        self._pool[key] = cached
                        for i in found:
                            self._topic_cache[id(i)] = (i, sorted(typed.topics(i)))
            out.extend(cached[2])
        return out

    def _topics_of(self, item: Item) -> list[str]:
        found = self._topic_cache.get(id(item))
        if found is not None and found[0] is item:
            return found[1]
        return sorted(typed.topics(item))

    def _people(self, tenant: str, me: Person, n: int) -> list[FeedEntry]:
        answer = self.networking.people(tenant, me.user_id, n)
        if not answer.people:
            return []
        best = max(p.score for p in answer.people) or 1.0
        out = []
        for p in answer.people:
            reasons = [FeedReason(kind=r.kind, text=r.text) for r in p.reasons] or [
                FeedReason(kind="people", text="people like you interacted with them")]
            out.append(FeedEntry(
                section="people", id=p.person_id, type="person", title=p.name,
                score=round(p.score / best, 6), reasons=reasons, url=p.profile_url,
                attribution=p.attribution, person=p,
            ))
        return out

    def _events(self, tenant: str, me: Person, now: datetime) -> list[FeedEntry]:
        signals = self.signals(tenant)
        city = (me.user.profile.city or "").strip().lower() if me.user is not None else ""
        out = []
        for item in self._items(tenant, [typed.EVENT]):
            info = typed.event_info(item)
            if info is None or info.starts_at <= now or item.item_id in me.joined \
                    or item.item_id in me.refused:
                continue
            going = signals.members.get(item.item_id, set())
            left = None
            if info.capacity is not None:
                left = info.capacity - info.registered - len(going)
                if left <= 0:
                    continue
            topic_fit, shared = fit(me.topics, self._topics_of(item))
            contacts = len(going & me.contacts)
            days = (info.starts_at - now).total_seconds() / 86400.0
            soon = math.exp(-days / EVENT_SOON_DAYS)
            score = 0.55 * topic_fit + 0.25 * contacts / (contacts + 2) + 0.2 * soon
            local = info.starts_at.astimezone(me.zone)
            reasons = []
            if shared:
                reasons.append(FeedReason(kind="topics", text="about " + ", ".join(shared)))
            if contacts:
                reasons.append(FeedReason(kind="contacts",
                                          text=f"{contacts} of your contacts are going"))
            score *= convenience(local.hour)
            if local.hour in me.active_hours and convenience(local.hour) >= 0.8:
                score *= 1.2
                reasons.append(FeedReason(kind="time",
                                          text="at a time you are usually active"))
            where = (info.city or "").strip().lower()
            if info.online:
                reasons.append(FeedReason(kind="place", text="online"))
            elif info.place is not None and me.location is not None:
                km = typed.distance_km(me.location, info.place)
                score *= 1.0 / (1.0 + km / DISTANCE_SCALE_KM)
                reasons.append(FeedReason(kind="place", text=f"{km:,.0f} km from you"
                                          + (f", in {info.city}" if info.city else "")))
            elif city and where and where != city:
                score *= 0.5
            elif city and where == city:
                reasons.append(FeedReason(kind="place", text=f"in {info.city}, where you are"))
            if not (shared or contacts):
                continue  # nothing about it is about this person
            reasons.append(FeedReason(
                kind="time", text=f"starts {local:%a %d %b %H:%M} your time"
                + (f", {left} places left" if left is not None else "")))
            out.append(FeedEntry(
                section="events", id=item.item_id, type=item.type, title=item.title or None,
                score=round(min(score, 1.0), 6), reasons=reasons, url=_text(item.properties, "url"),
                attribution=_text(item.properties, "attribution"), starts_at=info.starts_at,
                ends_at=info.ends_at, time_zone=info.time_zone,
                local_start=local.isoformat(), places_left=left,
            ))
        return sorted(out, key=lambda e: (-e.score, e.id))

    def _projects(self, tenant: str, me: Person) -> list[FeedEntry]:
        out = []
        for item in self._items(tenant, [typed.PROJECT]):
            info = typed.project_info(item)
            if info is None or (info.roles_open is not None and info.roles_open <= 0):
                continue
            if item.item_id in me.joined or item.item_id in me.refused \
                    or item.author_id == me.user_id:
                continue
            needed = info.required_skills or tuple(self._topics_of(item))
            have = [s for s in needed if s in me.skills]
            if not have:
                continue
            reasons = [FeedReason(kind="skills",
                                  text="needs " + ", ".join(have[:3]) + ", which you have")]
            if info.roles:
                reasons.append(FeedReason(kind="roles", text="open roles: "
                                          + ", ".join(info.roles[:3])))
            out.append(FeedEntry(
                section="projects", id=item.item_id, type=item.type, title=item.title or None,
                score=round(len(have) / len(needed), 6), reasons=reasons,
                url=_text(item.properties, "url"),
                attribution=_text(item.properties, "attribution"),
            ))
        return sorted(out, key=lambda e: (-e.score, e.id))

    def _groups(self, tenant: str, me: Person) -> list[FeedEntry]:
        signals = self.signals(tenant)
        out = []
        for item in self._items(tenant, [typed.GROUP]):
            if item.item_id in me.joined or item.item_id in me.refused:
                continue
            topic_fit, shared = fit(me.topics, self._topics_of(item))
            contacts = len(signals.members.get(item.item_id, set()) & me.contacts)
            if not (shared or contacts):
                continue
            reasons = []
            if shared:
                reasons.append(FeedReason(kind="topics", text="about " + ", ".join(shared)))
            if contacts:
                reasons.append(FeedReason(kind="contacts",
                                          text=f"{contacts} of your contacts are members"))
            out.append(FeedEntry(
                section="groups", id=item.item_id, type=item.type, title=item.title or None,
                score=round(0.6 * topic_fit + 0.4 * contacts / (contacts + 2), 6),
                reasons=reasons, url=_text(item.properties, "url"),
                attribution=_text(item.properties, "attribution"),
            ))
        return sorted(out, key=lambda e: (-e.score, e.id))

    def _content(self, tenant: str, me: Person, now: datetime, n: int) -> list[FeedEntry]:
        scored: list[tuple[float, str, Item, list[str], bool, bool, bool]] = []
        for item in self._items(tenant, sorted(typed.CONTENT_TYPES)):
            if item.author_id == me.user_id or item.item_id in me.joined \
                    or item.item_id in me.refused:
                continue
            group = _text(item.properties, "group_id")
            series = _text(item.properties, "series_id")
            topic_fit, shared = fit(me.topics, self._topics_of(item))
            in_group = group is not None and group in me.joined
            by_contact = item.author_id is not None and item.author_id in me.contacts
            followed = series is not None and series in me.joined
            if not (shared or in_group or by_contact or followed):
                continue
            when = typed.published(item)
            age = max(0.0, (now - when).total_seconds() / 86400.0) if when else 30.0
            fresh = max(FRESHNESS_FLOOR, 0.5 ** (age / CONTENT_HALF_LIFE_DAYS))
            score = (0.45 * topic_fit + 0.25 * in_group + 0.2 * by_contact + 0.1 * followed) \
                * fresh
            scored.append((-round(score, 6), item.item_id, item, shared, in_group, by_contact,
                           followed))
        scored.sort(key=lambda x: (x[0], x[1]))
        # only the candidates the feed can use are explained; erased authors' posts leave it
        # (one batched lookup)
        head = scored[: 3 * n]
        prefetch = getattr(self.networking.is_erased, "prefetch", None)
        if prefetch is not None:
            prefetch(tenant, [x[2].author_id for x in head if x[2].author_id is not None])
        out = []
        for neg, _, item, shared, in_group, by_contact, followed in head:
            author = None
            if item.author_id is not None:
                if self.networking.is_erased(tenant, item.author_id):
                    continue
                who = self.users.get(tenant, item.author_id)
                author = FeedAuthor(
                    user_id=item.author_id,
                    name=(who.profile.name if who else None)
                    or _text(item.properties, "author_name"),
                    profile_url=(_text(who.properties, "profile_url") if who else None)
                    or _text(item.properties, "author_url"))
            reasons = []
            if shared:
                reasons.append(FeedReason(kind="topics", text="about " + ", ".join(shared)))
            if in_group:
                reasons.append(FeedReason(kind="group", text="posted in a group you are in"))
            if by_contact:
                reasons.append(FeedReason(kind="author", text="by one of your contacts"))
            if followed:
                reasons.append(FeedReason(kind="series", text="a new episode of a series "
                                          "you follow"))
            out.append(FeedEntry(
                section="content", id=item.item_id, type=item.type, title=item.title or None,
                score=-neg, reasons=reasons, url=_text(item.properties, "url"),
                author=author, attribution=_text(item.properties, "attribution"),
            ))
        return out

    # "new for you" ------------------------------------------------------------------------

    def audience(self, tenant: str, item_id: str, limit: int) -> tuple[list[str], dict[str, Any]]:
        """Who a new event / post / episode is for, and the message context: the members of its
        group (``properties.group_id``), the followers of its series (``series_id``), then the
        people most engaged in its topics (their profile and their activity in the network),
        never its author or organiser nor erased people; an event already started or full
        reaches nobody. The journey that announces it applies consent, re-entry, caps and
        quiet hours."""
        item = self.catalog.get(tenant, item_id)
        if item is None or item.hidden or not item.available:
            return [], {}
        now = self.clock()
        context: dict[str, Any] = {"item_type": item.type,
                                   "url": _text(item.properties, "url") or "",
                                   "starts_at": "", "time_zone": "", "group_title": "",
                                   "series_title": ""}
        exclude = {item.author_id, _text(item.properties, "organiser_id")}
        if item.type == typed.EVENT:
            info = typed.event_info(item)
            if info is None or info.starts_at <= now or (
                    info.capacity is not None and info.registered >= info.capacity):
                return [], {}
            context["starts_at"] = info.starts_at.isoformat()
            context["time_zone"] = info.time_zone
        signals = self.signals(tenant)
        found: dict[str, str] = {}
        for key, why in (("group_id", "group"), ("series_id", "series")):
            ref = _text(item.properties, key)
            if ref is not None:
                group = self.catalog.get(tenant, ref)
                if group is not None:
                    context[f"{why}_title"] = group.title
                for person in sorted(signals.members.get(ref, set())):
                    found.setdefault(person, why)
        state = self.networking.network(tenant).state
        engaged: dict[str, float] = {}
        for topic in typed.topics(item):
            for person, weight in state.tag_people.get(topic, {}).items():
                engaged[person] = engaged.get(person, 0.0) + weight
        for person, _ in sorted(engaged.items(), key=lambda kv: (-kv[1], kv[0])):
            found.setdefault(person, "topics")
        people = [p for p in found if p not in exclude
                  and item_id not in signals.joined.get(p, ())
                  and not self.networking.is_erased(tenant, p)][:limit]
        return people, context

    # the feed -----------------------------------------------------------------------------

    def feed(self, tenant: str, user_id: str, n: int = 20,
             shares: dict[str, float] | None = None) -> FeedResponse:
        now = self.clock()
        asked = shares or dict(DEFAULT_SHARES)
        user = self.users.get(tenant, user_id)
        empty: dict[str, int] = dict.fromkeys(SECTIONS, 0)
        if (user is not None and user.restricted) or not self.networking.may_personalize(
                tenant, user_id):
            return FeedResponse(
                user_id=user_id, generated_at=now, shares=_normalized(asked), counts=empty,
                entries=[], note="no personalization consent (or processing restricted): "
                                 "no feed")
        me = self._person(tenant, user_id, user)
        ranked: dict[str, list[FeedEntry]] = {}
        if asked.get("people", 0) > 0:
            ranked["people"] = self._people(tenant, me, n)
        if asked.get("events", 0) > 0:
            ranked["events"] = self._events(tenant, me, now)
        if asked.get("projects", 0) > 0:
            ranked["projects"] = self._projects(tenant, me)
        if asked.get("groups", 0) > 0:
            ranked["groups"] = self._groups(tenant, me)
        if asked.get("content", 0) > 0:
            ranked["content"] = self._content(tenant, me, now, n)
        shares_used: dict[str, float] = {s: asked.get(s, 0.0) for s in SECTIONS}
        quota = quotas(shares_used, {s: len(v) for s, v in ranked.items()}, n)
        entries = interleave(ranked, quota, shares_used)
        counts = dict(empty)
        for e in entries:
            counts[e.section] += 1
        return FeedResponse(user_id=user_id, generated_at=now, shares=_normalized(shares_used),
                            counts=counts, entries=entries,
                            note=None if entries else "nothing to show yet")
