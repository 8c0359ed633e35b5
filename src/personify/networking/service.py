"""People recommendations served from the event log: the network of each tenant is built from
its person -> person events (connection request / accept / decline, follow, message, reply,
endorsement, block / mute), kept up to date by an ingestion listener, and asked at request time.

Safety and consent, applied on every answer:

- a person whose profile sets ``properties.network_discoverable = false`` is never recommended
  to anyone (they still get recommendations);
- a block or mute (either direction) keeps the two apart both ways until undone;
- connected people, and pairs where one declined the other, are not recommended;
- erased people are forgotten at once (their edges go with them: everyone's next answer);
- both people need the ``personalization`` consent and an unrestricted profile;
- explanations use only what both people may see: profile fields neither of them hides
  (``properties.network_hidden``: any of ``skills``, ``interests``, ``goals``) and the number of
  contacts they share.

Profiles: ``skills`` and ``interests`` are topics; ``goals`` are what a person seeks
(``"mentoring"``, ``"seek:co-author"``) or offers (``"offer:mentoring"``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from personify.domain.errors import Erased, InvalidInput, NotFound
from personify.domain.events import PERSON_EVENT_TYPES, Event, EventType
from personify.domain.users import User
from personify.networking.features import FEATURES
from personify.networking.introductions import (
    Contact,
    Introduction,
    IntroductionKpi,
    IntroductionView,
    IntroStatus,
    introduction_id,
    kpi,
)
from personify.networking.model import DirectionalModel
from personify.networking.recommender import PeopleRecommender, PersonMatch, serving_recommender
from personify.networking.state import Decision, Interaction, NetworkState, Profile
from personify.storage.ports import ErasureStore, EventStore, UserStore

log = logging.getLogger(__name__)
MODEL_POLL_S = 5.0
RANKED_CACHE = 50_000
"""People whose ranked candidates are kept between requests until the network changes."""
RENDERED_CACHE = 200_000
"""Rendered people entries kept (asker, person) until their parts change."""
ERASURE_SLACK = 5
"""Extra people asked for, in case some were erased by another process since."""
ERASURE_POLL_S = 1.0
"""How often (at most) a tenant's new erasure tombstones are read: an erasure made through
another process leaves this one's lists within this time (one made through this process does at
once, through the erasure hook). One cheap query a second instead of one per request."""
ERASURE_OVERLAP = timedelta(minutes=5)
"""Tombstones are read from this long before the previous read (clock skew between processes);
ones already applied are skipped."""
HIDEABLE_FIELDS = ("skills", "interests", "goals")
MAX_PROFILES = 200_000
"""Profiles read when a tenant's network is loaded; later ones are read when they ask."""
INTERACTION_TYPES = frozenset(
    {
        EventType.INTRODUCTION_REQUEST,
        EventType.INTRODUCTION_ACCEPT,
        EventType.CONNECTION_REQUEST,
        EventType.CONNECTION_ACCEPT,
        EventType.FOLLOW,
        EventType.MESSAGE,
        EventType.REPLY,
        EventType.ENDORSEMENT,
    }
)
DECISION_TYPES = {
    EventType.CONNECTION_ACCEPT: True, EventType.INTRODUCTION_ACCEPT: True,
    EventType.CONNECTION_DECLINE: False, EventType.INTRODUCTION_DECLINE: False,
}
"""Answers to a request (by the person asked; ``person_id`` is who asked): accepted or not."""
INTRODUCTION_TYPES = frozenset(
    {EventType.INTRODUCTION_REQUEST, EventType.INTRODUCTION_ACCEPT, EventType.INTRODUCTION_DECLINE}
)
Notify = Callable[[str, Introduction, "User | None", "User | None", list[str]], str]
"""``(tenant, introduction, asker, recipient, shared visible topics) -> message status``: asks
the recipient (through the messaging outbox)."""
PRIOR_WEIGHTS = {
    "common_neighbours": 0.5, "adamic_adar": 0.3, "shared_threads": 0.3,
    "offers_what_other_seeks": 0.6, "seeks_what_other_offers": 0.4, "topic_similarity": 0.4,
    "actor_activity": 0.3, "target_received": 0.2, "target_activity": 0.3,
    "actor_recency": 0.2, "target_recency": 0.3, "target_community_popularity": 0.2,
    "target_partners": 0.0, "target_recent_activity": 0.3, "actor_recent_activity": 0.3,
    "target_recent_acts": 0.3,
}
"""The model used until ``personify networking train`` has learned one from the tenant's events."""


def prior_model() -> DirectionalModel:
    n = len(FEATURES)
    return DirectionalModel(
        weights=np.asarray([PRIOR_WEIGHTS[f] for f in FEATURES]), bias=-3.0,
        mean=np.zeros(n), scale=np.ones(n),
    )


def model_path(model_dir: str | Path, tenant: str) -> Path:
    return Path(model_dir) / "networking" / f"{tenant}.json"


class PersonReason(BaseModel):
    kind: str = Field(description="shared_topics | they_offer | they_seek | common_contacts")
    text: str
    topics: list[str] = Field(default_factory=list)
    count: int | None = None


class PersonRecommendation(BaseModel):
    person_id: str
    name: str | None = None
    score: float = Field(description="both directions' predicted interest combined: "
                         "interest_forward^α · interest_backward^(1−α), α learned")
    interest_forward: float = Field(description="predicted interest of the asking person")
    interest_backward: float = Field(description="predicted interest of the recommended person")
    sources: list[str]
    reasons: list[PersonReason]
    profile_url: str | None = Field(
        None, description="the person's public profile (properties.profile_url)")
    attribution: str | None = Field(
        None, description="licence / source line to show with this person (properties.attribution)")


class PeopleResponse(BaseModel):
    user_id: str
    people: list[PersonRecommendation]
    model: str = Field(description="'trained' (personify networking train) or 'prior'")
    note: str | None = None


@dataclass
class Visible:
    """What one person shows others (after their hidden fields)."""

    topics: set[str] = field(default_factory=set)
    offers: set[str] = field(default_factory=set)
    seeks: set[str] = field(default_factory=set)


NOBODY = Visible()
"""What a person without a stored profile shows (shared: never modified)."""


def _goals(goals: Sequence[str]) -> tuple[set[str], set[str]]:
    offers, seeks = set(), set()
    for goal in goals:
        text = goal.strip().lower()
        if text.startswith("offer:"):
            offers.add(text[6:].strip())
        elif text.startswith("seek:"):
            seeks.add(text[5:].strip())
        elif text:
            seeks.add(text)
    return offers, seeks


def visible(user: User | None) -> Visible:
    if user is None:
        return Visible()
    hidden = set(_strings(user.properties.get("network_hidden")))
    out = Visible()
    if "skills" not in hidden:
        out.topics |= {s.lower() for s in user.profile.skills}
    if "interests" not in hidden:
        out.topics |= {s.lower() for s in user.profile.interests}
    if "goals" not in hidden:
        out.offers, out.seeks = _goals(user.profile.goals)
    return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def to_interaction(event: Event) -> Interaction | None:
    """The person -> person interaction an event records (None for blocks, declines, ...)."""
    other = event.properties.get("person_id")
    if event.type not in INTERACTION_TYPES or event.user_id is None or not isinstance(other, str):
        return None
    topics = tuple(_strings(event.properties.get("topics")))
    offered = event.properties.get("offered")
    thread = event.properties.get("thread")
    return Interaction(
        actor=event.user_id, target=other, timestamp=event.timestamp, kind=event.type,
        thread=thread if isinstance(thread, str) else None, tags=topics,
        offered=offered if isinstance(offered, bool) else None,
    )


def to_decision(event: Event) -> Decision | None:
    """The explicit answer an accept / decline event records (None for other events)."""
    accepted = DECISION_TYPES.get(EventType(event.type)) if event.type in DECISION_TYPES else None
    other = event.properties.get("person_id")
    if accepted is None or event.user_id is None or not isinstance(other, str):
        return None
    return Decision(actor=event.user_id, target=other, timestamp=event.timestamp,
                    accepted=accepted)


def profile_of(user: User) -> Profile:
    """Topics (skills, interests) and goals (what they offer / seek) of a stored profile."""
    offers, seeks = _goals(user.profile.goals)
    return Profile(
        topics={s.lower(): 1.0 for s in [*user.profile.skills, *user.profile.interests]},
        offers=dict.fromkeys(offers, 1.0), seeks=dict.fromkeys(seeks, 1.0),
    )


def _text(user: User | None, key: str) -> str | None:
    value = None if user is None else user.properties.get(key)
    return value if isinstance(value, str) else None


def discoverable(user: User | None) -> bool:
    return user is None or user.properties.get("network_discoverable") is not False


@dataclass
class TenantNetwork:
    state: NetworkState
    model: DirectionalModel
    trained: bool
    model_mtime: float = 0.0
    checked: float = 0.0
    connected: set[frozenset[str]] = field(default_factory=set)
    declined: set[frozenset[str]] = field(default_factory=set)
    blocked: dict[str, set[str]] = field(default_factory=dict)
    """person -> people they blocked or muted."""
    declared: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """person -> the profile fields last put in the state (re-declared when they change)."""

    introductions: dict[str, Introduction] = field(default_factory=dict)
    recommender: PeopleRecommender | None = None
    """kept between requests (its list of popular people is cached per state version)."""
    erasures_read: float = 0.0
    """``time.monotonic()`` of the last tombstone read."""
    erasures_since: datetime | None = None
    erased: set[str] = field(default_factory=set)
    """hashes of every tombstone of the tenant read so far (all of them at load) and of the
    people erased through this process."""
    rendered: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    """(asker, person) -> (match, both visible profiles, the person's profile object, the
    rendered entry): reused while every part is the same object."""
    shown: dict[str, tuple[User, Visible]] = field(default_factory=dict)
    """person -> (the stored profile object, what it shows): re-derived when the profile
    cache hands out another object (a write)."""

    def apart(self, a: str, b: str) -> bool:
        return b in self.blocked.get(a, ()) or a in self.blocked.get(b, ())


class NetworkingService:
    """One per API process; the network of a tenant is loaded on its first request."""

    def __init__(
        self,
        events: EventStore,
        users: UserStore,
        *,
        model_dir: str | Path,
        may_personalize: Callable[[str, str], bool],
        is_erased: Callable[[str, str], bool],
        ingest: Callable[[str, list[Event]], Any] | None = None,
        # the event ingestor's ``ingest`` (its result has ``rejected``)
        notify: Notify | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        erasures: ErasureStore | None = None,
        # tombstones read every ERASURE_POLL_S (None: every answer's people are checked)
    ) -> None:
        self.erasures = erasures
        self.events = events
        self.users = users
        self.model_dir = Path(model_dir)
        self.may_personalize = may_personalize
        self.is_erased = is_erased
        self.ingest = ingest
        self.notify = notify
        self.clock = clock
        self._tenants: dict[str, TenantNetwork] = {}
        self._lock = threading.RLock()

    # loading and updates -----------------------------------------------------------------

    def loaded(self, tenant: str) -> bool:
        """Whether the tenant's network is in memory (answers need no store scan)."""
        return tenant in self._tenants

    def network(self, tenant: str) -> TenantNetwork:
        net = self._tenants.get(tenant)
        if net is not None:
            now = time.monotonic()
            if now - net.checked > MODEL_POLL_S:
                net.checked = now
                self._maybe_reload(tenant, net)
            return net
        with self._lock:
            net = self._tenants.get(tenant)
            if net is None:
                model, trained, mtime = self._load_model(tenant)
                net = TenantNetwork(NetworkState(), model, trained, model_mtime=mtime)
                if self.erasures is not None:
                    net.erasures_read = time.monotonic()
                    net.erasures_since = self.clock() - ERASURE_OVERLAP
                    net.erased = {t.user_id_hash for t in self.erasures.erased_since(
                        tenant, datetime.min.replace(tzinfo=UTC))}
                self._apply(tenant, net, self.events.scan(tenant, types=sorted(PERSON_EVENT_TYPES)))
                self._declare_all(tenant, net)
                self._tenants[tenant] = net
            return net

    def _declare_all(self, tenant: str, net: TenantNetwork, page: int = 1000) -> None:
        """Every stored profile's topics and goals (up to ``MAX_PROFILES``)."""
        offset = 0
        while offset < MAX_PROFILES:
            users = self.users.list(tenant, limit=page, offset=offset)
            for user in users:
                if not self.is_erased(tenant, user.user_id):
                    self._declare(net, user.user_id, user)
            if len(users) < page:
                return
            offset += page

    def _load_model(self, tenant: str) -> tuple[DirectionalModel, bool, float]:
        path = model_path(self.model_dir, tenant)
        try:
            mtime = path.stat().st_mtime
            body = json.loads(path.read_text(encoding="utf-8"))
            return DirectionalModel.from_dict(body), True, mtime
        except FileNotFoundError:
            return prior_model(), False, 0.0
        except (ValueError, KeyError):
            log.exception("networking model %s unreadable; the prior model is used", path)
            return prior_model(), False, path.stat().st_mtime

    def _maybe_reload(self, tenant: str, net: TenantNetwork) -> None:
        """Pick up a model ``personify networking train`` wrote (checked every few seconds)."""
        path = model_path(self.model_dir, tenant)
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime == net.model_mtime:
            return
        model, trained, mtime = self._load_model(tenant)
        with self._lock:
            net.model, net.trained, net.model_mtime = model, trained, mtime

    def on_events(self, tenant: str, events: Sequence[Event]) -> None:
        """Ingestion listener: person -> person events change the network at once."""
        mine = [e for e in events if e.type in PERSON_EVENT_TYPES]
        if not mine:
            return
        with self._lock:
            net = self._tenants.get(tenant)
            if net is not None:  # not loaded yet: the scan on first use will include them
                self._apply(tenant, net, mine)

    def _apply(self, tenant: str, net: TenantNetwork, events: Any) -> None:
        for event in events:
            actor = event.user_id
            other = event.properties.get("person_id")
            if actor is None or not isinstance(other, str) or actor == other:
                continue
            if self.is_erased(tenant, actor) or self.is_erased(tenant, other):
                continue
            pair = frozenset((actor, other))
            kind = event.type
            if kind in (EventType.BLOCK, EventType.MUTE):
                net.blocked.setdefault(actor, set()).add(other)
                continue
            if kind in (EventType.UNBLOCK, EventType.UNMUTE):
                net.blocked.get(actor, set()).discard(other)
                continue
            if kind in (EventType.CONNECTION_DECLINE, EventType.INTRODUCTION_DECLINE):
                net.declined.add(pair)
            if kind in (EventType.CONNECTION_ACCEPT, EventType.INTRODUCTION_ACCEPT):
                net.connected.add(pair)
            if kind in INTRODUCTION_TYPES:
                self._apply_introduction(tenant, net, event, actor, other)
            interaction = to_interaction(event)
            if interaction is not None:
                net.state.add(interaction)

    def _apply_introduction(self, tenant: str, net: TenantNetwork, event: Event, actor: str,
                            other: str) -> None:
        if event.type == EventType.INTRODUCTION_REQUEST:
            iid = introduction_id(tenant, actor, other)
            if iid not in net.introductions:
                source = event.properties.get("source")
                variant = event.properties.get("variant")
                net.introductions[iid] = Introduction(
                    iid, actor, other, event.timestamp,
                    source=source if isinstance(source, str) else "user",
                    variant=variant if isinstance(variant, str) else "default")
            return
        intro = net.introductions.get(introduction_id(tenant, other, actor))
        if intro is None or intro.status != IntroStatus.PENDING:
            return
        intro.status = (IntroStatus.ACCEPTED if event.type == EventType.INTRODUCTION_ACCEPT
                        else IntroStatus.DECLINED)
        intro.answered_at = event.timestamp

    def forget(self, tenant: str, subjects: Sequence[str]) -> int:
        """Erasure hook: the people leave the network (and everyone's lists) at once."""
        removed = 0
        with self._lock:
            net = self._tenants.get(tenant)
            if net is None:
                return 0
            for person in subjects:
                if self.erasures is not None:
                    net.erased.add(self.erasures.user_id_hash(tenant, person))
                if person in net.state.people:
                    removed += 1
                net.state.forget(person)
                net.connected = {p for p in net.connected if person not in p}
                net.declined = {p for p in net.declined if person not in p}
                net.blocked.pop(person, None)
                for people in net.blocked.values():
                    people.discard(person)
                net.declared.pop(person, None)
                net.introductions = {
                    k: v for k, v in net.introductions.items()
                    if person not in (v.from_user_id, v.to_user_id)
                }
        return removed

    # answers -----------------------------------------------------------------------------

    def _declare(self, net: TenantNetwork, person: str, user: User | None) -> None:
        """Profile topics and goals feed the candidates and features (not the explanations,
        which read the visible fields again)."""
        if user is None:
            return
        key = (tuple(user.profile.skills), tuple(user.profile.interests), tuple(user.profile.goals))
        if net.declared.get(person) == key:
            return
        profile = profile_of(user)
        with self._lock:
            net.state.declare(person, profile.topics, offers=profile.offers, seeks=profile.seeks)
            net.declared[person] = key

    def people(self, tenant: str, user_id: str, n: int = 10) -> PeopleResponse:
        return PeopleResponse.model_validate(self.people_body(tenant, user_id, n))

    def people_body(self, tenant: str, user_id: str, n: int = 10) -> dict[str, Any]:
        """The answer as JSON-ready data (what the API sends); each entry is rendered once per
        (match, both visible profiles) and reused while none of them changes."""
        net = self.network(tenant)
        me = self.users.get(tenant, user_id)
        label = "trained" if net.trained else "prior"
        if (me is not None and me.restricted) or not self.may_personalize(tenant, user_id):
            return {
                "user_id": user_id, "people": [], "model": label,
                "note": "no personalization consent (or processing restricted): no people "
                        "suggested",
            }
        self._declare(net, user_id, me)
        rec = net.recommender
        if rec is None or rec.model is not net.model:
            rec = net.recommender = serving_recommender(net.state, net.model,
                                                        cache_size=RANKED_CACHE)
        users: dict[str, User | None] = {}

        def user(pid: str) -> User | None:
            if pid not in users:
                users[pid] = self.users.get(tenant, pid)
            return users[pid]

        def allowed(pid: str) -> bool:
            if net.apart(user_id, pid):
                return False
            pair = frozenset((user_id, pid))
            if pair in net.connected or pair in net.declined:
                return False
            other = user(pid)
            if other is not None and (other.restricted or not discoverable(other)):
                return False
            return self.may_personalize(tenant, pid)

        if self.erasures is not None:
            self._read_erasures(tenant, net)
        with self._lock:  # the listener may be changing the state in another thread
            slack = 0 if self.erasures is not None else ERASURE_SLACK
            matches = rec.recommend(user_id, n + slack, allowed=allowed)
        if self.erasures is None:
            # no tombstone reads: an erasure made by another process is caught here (one
            # batched lookup) and forgotten
            prefetch = getattr(self.is_erased, "prefetch", None)
            if prefetch is not None:
                prefetch(tenant, [m.person_id for m in matches])
            erased = [m.person_id for m in matches if self.is_erased(tenant, m.person_id)]
            if erased:
                self.forget(tenant, erased)
                matches = [m for m in matches if m.person_id not in erased]
        matches = matches[:n]
        mine = self._visible(net, user_id, me)
        return {"user_id": user_id, "people": [self._entry(net, user_id, m, mine, user(m.person_id))
                                               for m in matches],
                "model": label, "note": None}

    def _entry(self, net: TenantNetwork, asker: str, m: PersonMatch, mine: Visible,
               other: User | None) -> dict[str, Any]:
        theirs = self._visible(net, m.person_id, other)
        key = (asker, m.person_id)
        hit = net.rendered.get(key)
        if (hit is not None and hit[0] is m and hit[1] is mine and hit[2] is theirs
                and hit[3] is other):
            return hit[4]
        body = self._explain(m, mine, other, theirs).model_dump(mode="json")
        if len(net.rendered) >= RENDERED_CACHE:
            net.rendered.clear()
        net.rendered[key] = (m, mine, theirs, other, body)
        return body

    def _visible(self, net: TenantNetwork, person: str, user: User | None) -> Visible:
        if user is None:
            return NOBODY
        hit = net.shown.get(person)
        if hit is not None and hit[0] is user:
            return hit[1]
        shows = visible(user)
        if len(net.shown) >= RANKED_CACHE:
            net.shown.clear()
        net.shown[person] = (user, shows)
        return shows

    def _read_erasures(self, tenant: str, net: TenantNetwork) -> None:
        """Forget the people erased through other processes (tombstones read at most every
        ``ERASURE_POLL_S``)."""
        assert self.erasures is not None
        now = time.monotonic()
        if now - net.erasures_read < ERASURE_POLL_S:
            return
        net.erasures_read = now
        since = net.erasures_since or self.clock() - ERASURE_OVERLAP
        net.erasures_since = self.clock() - ERASURE_OVERLAP
        fresh = [t.user_id_hash for t in self.erasures.erased_since(tenant, since)
                 if t.user_id_hash not in net.erased]
        if not fresh:
            return
        with self._lock:
            people = list(net.state.people)
        by_hash = {self.erasures.user_id_hash(tenant, p): p for p in people}
        gone = [by_hash[h] for h in fresh if h in by_hash]
        if gone:
            self.forget(tenant, gone)
        net.erased.update(fresh)

    def erased(self, tenant: str, user_id: str) -> bool:
        """Whether ``user_id`` was erased: from the tenant's tombstones (read at load, then at
        most every ``ERASURE_POLL_S``) without a query per request; through ``is_erased``
        when the service has no erasure store."""
        if self.erasures is None:
            return self.is_erased(tenant, user_id)
        net = self.network(tenant)
        self._read_erasures(tenant, net)
        return self.erasures.user_id_hash(tenant, user_id) in net.erased

    def _explain(self, m: PersonMatch, mine: Visible, other: User | None,
                 theirs: Visible) -> PersonRecommendation:
        # built from the service's own values: constructed, not validated (per request);
        # every field is passed (a missing one's default factory is slow to construct)
        reasons: list[PersonReason] = []
        shared = sorted(mine.topics & theirs.topics)[:3]
        if shared:
            reasons.append(PersonReason.model_construct(
                kind="shared_topics", topics=shared, count=None,
                text="you both list " + ", ".join(shared)))
        they_offer = sorted(mine.seeks & theirs.offers)[:3]
        if they_offer:
            reasons.append(PersonReason.model_construct(
                kind="they_offer", topics=they_offer, count=None,
                text="you look for " + ", ".join(they_offer) + "; they offer it"))
        they_seek = sorted(theirs.seeks & mine.offers)[:3]
        if they_seek:
            reasons.append(PersonReason.model_construct(
                kind="they_seek", topics=they_seek, count=None,
                text="they look for " + ", ".join(they_seek) + "; you offer it"))
        if m.common_contacts:
            reasons.append(PersonReason.model_construct(
                kind="common_contacts", count=m.common_contacts, topics=[],
                text=f"{m.common_contacts} of your contacts interacted with them",
            ))
        return PersonRecommendation.model_construct(
            person_id=m.person_id,
            name=other.profile.name if other is not None else None,
            score=round(m.score, 6), interest_forward=round(m.forward, 6),
            interest_backward=round(m.backward, 6), sources=list(m.sources), reasons=reasons,
            profile_url=_text(other, "profile_url"), attribution=_text(other, "attribution"),
        )


SYSTEM_SOURCE = "system"


class IntroductionRequest(BaseModel):
    from_user_id: str = Field(min_length=1, max_length=256)
    to_user_id: str = Field(min_length=1, max_length=256)
    source: str = Field("user", pattern="^[a-z_]{1,32}$",
                        description="who proposed it: 'user' (A asked) or e.g. 'system'")
    variant: str | None = Field(
        default=None, pattern="^[A-Za-z0-9_.-]{1,64}$",
        description="the message variant (e.g. an experiment arm) acceptance is reported by; "
                    "default: the recipient's '<language>-<tone>'")


class ProposalRequest(BaseModel):
    user_id: str = Field(min_length=1, max_length=256,
                         description="the person the system proposes introductions for")
    n: int = Field(default=3, ge=1, le=20, description="pending system proposals to keep (1..20)")


def message_variant(recipient: User | None) -> str:
    """B's language (en / ru, else en) and tone (formal / informal): the variant of the
    introduction message B receives."""
    if recipient is None:
        return "en-formal"
    language = (recipient.profile.language or "en").lower()[:2]
    tone = recipient.properties.get("tone")
    return (f"{language if language in ('en', 'ru') else 'en'}-"
            f"{tone if tone in ('formal', 'informal') else 'formal'}")


def _contact(user_id: str, user: User | None) -> Contact:
    if user is None:
        return Contact(user_id=user_id)
    url = user.properties.get("profile_url")
    return Contact(user_id=user_id, name=user.profile.name, email=user.profile.email,
                   profile_url=url if isinstance(url, str) else None)


class Introductions:
    """The introduction flow over a :class:`NetworkingService` (its network, events and
    notifier)."""

    def __init__(self, service: NetworkingService) -> None:
        self.s = service

    def _known(self, tenant: str, net: TenantNetwork, person: str, field: str) -> User | None:
        if self.s.is_erased(tenant, person):
            raise Erased(f"user {person!r} was erased", field=field,
                         accepted="the id of a user who has not been erased")
        user = self.s.users.get(tenant, person)
        if user is None and person not in net.state.people:
            raise NotFound(f"no user {person!r}", field=field,
                           accepted="the id of a user with a profile or person events")
        return user

    def view(self, tenant: str, intro: Introduction, as_user: str,
             message: str | None = None) -> IntroductionView:
        now = self.s.clock()
        status = intro.seen_by(as_user, now)
        contact = None
        if status == IntroStatus.ACCEPTED:
            other = intro.to_user_id if as_user == intro.from_user_id else intro.from_user_id
            contact = _contact(other, self.s.users.get(tenant, other))
        return IntroductionView(
            introduction_id=intro.introduction_id, from_user_id=intro.from_user_id,
            to_user_id=intro.to_user_id, status=status, requested_at=intro.requested_at,
            expires_at=intro.expires_at, source=intro.source, variant=intro.variant,
            contact=contact, message=message,
        )

    def _write(self, tenant: str, event: dict[str, Any]) -> None:
        if self.s.ingest is None:
            raise InvalidInput("introductions need the event ingestor", field="introductions")
        result = self.s.ingest(tenant, [Event.model_validate(event)])
        if result.rejected:
            r = result.rejected[0]
            raise InvalidInput(r.message, field=r.field, accepted=r.accepted)

    def request(self, tenant: str, body: IntroductionRequest) -> tuple[IntroductionView, bool]:
        """Create (or, on a retry, return) the introduction; True when created now."""
        a, b = body.from_user_id, body.to_user_id
        if a == b:
            raise InvalidInput("a person cannot be introduced to themselves", field="to_user_id",
                               accepted="another person's id")
        net = self.s.network(tenant)
        asker = self._known(tenant, net, a, "from_user_id")
        recipient = self._known(tenant, net, b, "to_user_id")
        iid = introduction_id(tenant, a, b)
        existing = net.introductions.get(iid)
        if existing is not None:  # a retry (a decline stays silent: shown as pending)
            return self.view(tenant, existing, a), False
        if net.apart(a, b):
            raise InvalidInput(f"{a!r} and {b!r} blocked or muted one another",
                               field="to_user_id", accepted="a person neither side blocked")
        if recipient is not None and (not discoverable(recipient) or recipient.restricted):
            raise InvalidInput(f"user {b!r} is not discoverable", field="to_user_id",
                               accepted="a discoverable person")
        if frozenset((a, b)) in net.connected:
            raise InvalidInput(f"{a!r} and {b!r} are already connected", field="to_user_id",
                               accepted="a person not yet connected")
        now = self.s.clock()
        variant = body.variant or message_variant(recipient)
        self._write(tenant, {
            "event_id": f"{iid}-request", "type": EventType.INTRODUCTION_REQUEST.value,
            "user_id": a, "timestamp": now,
            "properties": {"person_id": b, "introduction_id": iid, "source": body.source,
                           "variant": variant},
        })
        intro = net.introductions.get(iid)
        if intro is None:  # the listener did not apply it (should not happen): do it here
            intro = Introduction(iid, a, b, now, source=body.source, variant=variant)
            with self.s._lock:
                net.introductions.setdefault(iid, intro)
        shared = sorted(visible(asker).topics & visible(recipient).topics)[:5]
        message = (self.s.notify(tenant, intro, asker, recipient, shared)
                   if self.s.notify is not None else "not sent: messaging is not configured")
        return self.view(tenant, intro, a, message), True

    def answer(self, tenant: str, iid: str, accept: bool) -> IntroductionView:
        net = self.s.network(tenant)
        intro = net.introductions.get(iid)
        if intro is None:
            raise NotFound(f"no introduction {iid!r}", field="introduction_id",
                           accepted="the id of a requested introduction")
        now = self.s.clock()
        status = intro.status_at(now)
        if status == IntroStatus.EXPIRED:
            raise InvalidInput(f"introduction {iid!r} expired at {intro.expires_at.isoformat()}",
                               field="introduction_id", accepted="a pending introduction")
        if status == IntroStatus.DECLINED:
            raise InvalidInput(f"introduction {iid!r} was declined; a decline is final",
                               field="introduction_id", accepted="a pending introduction")
        if status == IntroStatus.ACCEPTED:
            if accept:  # a retried accept
                return self.view(tenant, intro, intro.to_user_id)
            raise InvalidInput(f"introduction {iid!r} was already accepted",
                               field="introduction_id", accepted="a pending introduction")
        kind = EventType.INTRODUCTION_ACCEPT if accept else EventType.INTRODUCTION_DECLINE
        self._write(tenant, {
            "event_id": f"{iid}-answer", "type": kind.value, "user_id": intro.to_user_id,
            "timestamp": now,
            "properties": {"person_id": intro.from_user_id, "introduction_id": iid},
        })
        return self.view(tenant, intro, intro.to_user_id)

    def get(self, tenant: str, iid: str, as_user: str) -> IntroductionView:
        net = self.s.network(tenant)
        intro = net.introductions.get(iid)
        if intro is None or as_user not in (intro.from_user_id, intro.to_user_id):
            raise NotFound(f"no introduction {iid!r} for {as_user!r}", field="introduction_id",
                           accepted="an introduction this person asked for or received")
        return self.view(tenant, intro, as_user)

    def propose(self, tenant: str, user_id: str, n: int = 3) -> list[IntroductionView]:
        """System-proposed introductions (``source: system``): keep up to ``n`` pending ones
        from ``user_id`` to the best people of their reciprocal list (the people recommender:
        consent, discoverability, blocks, connections and declines already applied), each
        recipient asked like any other. A retry returns the same pending proposals (oldest
        first)."""
        net = self.s.network(tenant)
        self._known(tenant, net, user_id, "user_id")
        now = self.s.clock()
        mine = sorted(
            (i for i in net.introductions.values()
             if i.from_user_id == user_id and i.source == SYSTEM_SOURCE
             and i.status_at(now) == IntroStatus.PENDING),
            key=lambda i: (i.requested_at, i.introduction_id))
        out = [self.view(tenant, i, user_id) for i in mine[:n]]
        if len(out) >= n:
            return out
        answer = self.s.people(tenant, user_id, min(100, 3 * n + 5))
        for match in answer.people:
            if len(out) >= n:
                break
            b = match.person_id
            if any(k in net.introductions for k in (introduction_id(tenant, user_id, b),
                                                      introduction_id(tenant, b, user_id))):
                continue  # asked before, either way (a decline stays final)
            try:
                view, _ = self.request(tenant, IntroductionRequest(
                    from_user_id=user_id, to_user_id=b, source=SYSTEM_SOURCE))
            except (InvalidInput, NotFound, Erased):
                continue
            out.append(view)
        return sorted(out, key=lambda v: (v.requested_at, v.introduction_id))

    def kpi(self, tenant: str) -> IntroductionKpi:
        net = self.s.network(tenant)
        return kpi(list(net.introductions.values()), self.s.clock())
