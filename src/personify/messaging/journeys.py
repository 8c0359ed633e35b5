"""The journey engine: consumes events and a clock, advances runs, enqueues outbox messages.

Deterministic: every entry point takes ``now``. A run waits by storing ``wake_at``; call
:meth:`JourneyEngine.tick` periodically (or with a fake clock in tests) to advance due runs.
Consent and unsubscribes are checked at every send step (and again by the outbox worker at
the moment of sending); a goal event (``exit_on``) ends the run.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from personify.domain.events import Event
from personify.domain.items import Item
from personify.domain.users import User
from personify.messaging.conditions import all_hold, record_of
from personify.messaging.item_updates import (
    PRICE_DROPPED,
    TRIGGER_KINDS,
    ItemChange,
    detect_item_changes,
)
from personify.messaging.journey_definitions import (
    ConditionStep,
    JourneyDefinition,
    SendStep,
    WaitStep,
)
from personify.messaging.message_tests import TEST_PHASE, step_experiment, variant_for
from personify.messaging.outbox import ConsentCheck, UserLookup, new_message
from personify.messaging.ports import JourneyStateStore, OutboxStore, SuppressionStore
from personify.messaging.records import JourneyRun, RunStatus

History = Callable[[str, str], Sequence[Event]]
"""(tenant, user_id) -> the person's recent events (any order)."""
SendTime = Callable[[User, datetime, timedelta], datetime]
"""(user, now, within) -> when to send (e.g. ``SendTimeModel.next_send_time``)."""
UsersMany = Callable[[str, Sequence[str]], Mapping[str, User]]
"""(tenant, user_ids) -> the existing users among them, by id (bulk lookup)."""
HistoryMany = Callable[[str, Sequence[str]], Mapping[str, Sequence[Event]]]
"""(tenant, user_ids) -> what :data:`History` gives for each of them (bulk lookup)."""

MAX_TRACKED_EVENTS = 200
_MAX_STEPS_PER_ADVANCE = 200


@dataclass
class JourneyEngine:
    """Runs the given journeys for every tenant (see the module docstring)."""

    journeys: Sequence[JourneyDefinition]
    runs: JourneyStateStore
    outbox: OutboxStore
    users: UserLookup
    consent: ConsentCheck | None = None
    suppressions: SuppressionStore | None = None
    history: History | None = None
    send_time: SendTime | None = None
    users_many: UsersMany | None = None
    history_many: HistoryMany | None = None
    insights: Callable[[str, str], dict[str, Any]] | None = None
    """``(tenant, user_id)``: the person's insights for condition steps on ``insights.*`` (the
    ``person.insights`` names of templates), read only for steps that use them."""

    def __post_init__(self) -> None:
        self._by_name = {j.name: j for j in self.journeys}
        self._triggers = frozenset(j.trigger.event for j in self.journeys if j.trigger.event)
        self._counted = frozenset(
            j.trigger.event for j in self.journeys if j.trigger.event and j.trigger.min_count > 1
        )

    # -- entry points -------------------------------------------------------------------------

    def handle_events(
        self, tenant: str, events: Sequence[Event], now: datetime
    ) -> list[JourneyRun]:
        """:meth:`handle_event` for a batch (what ingestion hands over), in timestamp order
        (stable for ties), with the same outcome as feeding the events one by one: the active
        runs of all the batch's people are read in one query, every event is decided in memory
        and the runs started, updated or ended are written in one transaction at the end. An
        event that triggers nothing is skipped for people without an active run; people,
        consent decisions and histories are looked up once per person per batch. Returns the
        runs started (as they stand at the end of the batch)."""
        ordered = sorted((e for e in events if e.user_id is not None), key=lambda e: e.timestamp)
        if not ordered:
            return []
        subjects = list(dict.fromkeys(e.user_id for e in ordered if e.user_id is not None))
        runs = _BatchRuns(self.runs, tenant, self.runs.active_many(tenant, subjects))
        triggered = list(
            dict.fromkeys(e.user_id for e in ordered if e.type in self._triggers and e.user_id)
        )
        if triggered:
            names = [j.name for j in self.journeys if j.trigger.event]
            runs.preload_latest(names, triggered)
        has_trigger = set(triggered)
        wanted = [s for s in subjects if s in has_trigger or runs.has_active(s)]
        users = _BatchUsers(self.users, self.users_many, tenant, wanted)
        history = None
        if self.history is not None:
            # the batch is already stored: reading the histories up front (one bulk read for
            # the known people with a repeated-event trigger) sees what reading each one
            # lazily would
            counted = [
                s
                for s in dict.fromkeys(
                    e.user_id for e in ordered if e.type in self._counted and e.user_id
                )
                if users(tenant, s) is not None
            ]
            history = _BatchHistory(self.history, self.history_many, tenant, counted)
        batch = replace(
            self,
            runs=runs,
            users=users,
            consent=_memo3(_batch_consent(self.consent, tenant, wanted))
            if self.consent is not None
            else None,
            history=history,
        )
        started: list[JourneyRun] = []
        try:
            for event in ordered:
                assert event.user_id is not None
                if event.type not in self._triggers and not runs.has_active(event.user_id):
                    continue
                started += batch.handle_event(tenant, event, now)
        finally:
            runs.flush()
        return started

    def handle_event(self, tenant: str, event: Event, now: datetime) -> list[JourneyRun]:
        """Record the event on the person's active runs (goal events end them), then start the
        journeys it triggers. Returns the runs started."""
        user_id = event.user_id
        if user_id is None:
            return []
        for run in self.runs.active(tenant, user_id):
            journey = self._by_name.get(run.journey)
            if journey is None:
                continue
            if event.type in journey.exit_on:
                self._exit(run, now, f"goal:{event.type}")
                continue
            tracked = run.context.setdefault("events", [])
            tracked.append(
                {"type": event.type, "item_id": event.item_id, "at": event.timestamp.isoformat()}
            )
            del tracked[:-MAX_TRACKED_EVENTS]
            run.updated_at = now
            self.runs.save(run)
        started = []
        user = self.users(tenant, user_id)
        for journey in self.journeys:
            trigger = journey.trigger
            if trigger.event != event.type or user is None:
                continue
            if not all_hold(trigger.where, record_of(user, event)):
                continue
            if (
                trigger.min_count > 1
                and self._count(tenant, event, journey, now) < trigger.min_count
            ):
                continue
            context = {"event": _event_context(event), "trigger_item_id": event.item_id}
            new_run = self._start(tenant, journey, user, now, context,
                                  occasion=f"event:{event.event_id}")
            if new_run is not None:
                started.append(new_run)
        return started

    def on_item_update(
        self, tenant: str, before: Item, after: Item, viewers: Iterable[str], now: datetime
    ) -> list[JourneyRun]:
        """Price drop / back in stock on an item: start the matching journeys for ``viewers``
        (people known to have viewed it; see :meth:`on_item_change` for a windowed lookup)."""
        audience = list(viewers)
        started = []
        for change in detect_item_changes(tenant, before, after, now):
            started += self.on_item_change(change, lambda _within: audience, now)
        return started

    def on_item_change(
        self, change: ItemChange, viewers: Callable[[timedelta], Iterable[str]], now: datetime,
        extra: Mapping[str, Any] | None = None,
    ) -> list[JourneyRun]:
        """An internal trigger event (``item.price_dropped`` / ``item.back_in_stock``): start
        every journey listening to it for the people ``viewers(trigger.viewed_within)`` names;
        consent, re-entry and cooldowns apply as for any trigger (caps and quiet hours when the
        message is sent)."""
        started = []
        for journey in self.journeys:
            trigger = journey.trigger
            if trigger.item_update is None or TRIGGER_KINDS[trigger.item_update] != change.kind:
                continue
            if change.kind == PRICE_DROPPED and change.drop_percent < trigger.min_drop_percent:
                continue
            context = {"event": {**change.event_context(), **(extra or {})},
                       "trigger_item_id": change.item_id}
            for user_id in viewers(trigger.viewed_within):
                user = self.users(change.tenant, user_id)
                if user is not None:
                    run = self._start(change.tenant, journey, user, now, dict(context))
                    if run is not None:
                        started.append(run)
        return started

    def on_segment_entered(
        self, tenant: str, user_id: str, segment: str, now: datetime
    ) -> list[JourneyRun]:
        user = self.users(tenant, user_id)
        if user is None:
            return []
        started = []
        for journey in self.journeys:
            if journey.trigger.segment == segment:
                run = self._start(tenant, journey, user, now, {"event": {"segment": segment}})
                if run is not None:
                    started.append(run)
        return started

    def scan_users(
        self,
        tenant: str,
        users: Iterable[User],
        now: datetime,
        *,
        last_active: Callable[[str], datetime | None] | None = None,
    ) -> list[JourneyRun]:
        """Daily scan: birthdays (in the person's time zone) and inactivity (win-back)."""
        from personify.messaging.guardrails import person_zone

        started = []
        for user in users:
            for journey in self.journeys:
                trigger = journey.trigger
                occasion: str | None = None
                if trigger.birthday and user.profile.birthday:
                    today = now.astimezone(person_zone(user)).date()
                    if user.profile.birthday[-5:] == today.strftime("%m-%d"):
                        occasion = f"birthday:{today.isoformat()}"
                elif trigger.inactive_for is not None and last_active is not None:
                    seen = last_active(user.user_id)
                    if seen is not None and now - seen >= trigger.inactive_for:
                        occasion = f"inactive-since:{seen.isoformat()}"
                if occasion is not None:
                    run = self._start(tenant, journey, user, now, {"event": {}},
                                      occasion=occasion)
                    if run is not None:
                        started.append(run)
        return started

    def tick(self, tenant: str, now: datetime, *, limit: int = 1000) -> int:
        """Advance every run whose wait is over; returns how many were advanced."""
        due = self.runs.due(tenant, now, limit=limit)
        for run in due:
            journey = self._by_name.get(run.journey)
            if journey is None:
                self._exit(run, now, "journey removed")
                continue
            purpose = journey.consent_purpose
            if purpose and not self._allowed(run.tenant, run.user_id, purpose):
                self._exit(run, now, "consent_withdrawn")
                continue
            self._advance(run, journey, now)
        return len(due)

    # -- internals ----------------------------------------------------------------------------

    def _count(self, tenant: str, event: Event, journey: JourneyDefinition, now: datetime) -> int:
        trigger = journey.trigger
        events = list(self.history(tenant, event.subject) if self.history else [])
        if all(e.event_id != event.event_id for e in events):
            events.append(event)
        since = now - trigger.window if trigger.window else None
        return sum(
            1
            for e in events
            if e.type == event.type
            and (since is None or e.timestamp >= since)
            and (not trigger.same_item or e.item_id == event.item_id)
        )

    def _start(
        self,
        tenant: str,
        journey: JourneyDefinition,
        user: User,
        now: datetime,
        context: dict[str, Any],
        *,
        occasion: str | None = None,
    ) -> JourneyRun | None:
        """Start ``journey`` for the person unless re-entry forbids it. ``occasion`` names what
        started it (a birthday on a date, an inactivity period, an event): a journey runs once
        per person and occasion, and its sends are keyed by it in the outbox, so a re-run scan
        (a worker restart) or a forgotten run never sends twice for the same occasion."""
        latest = self.runs.latest(tenant, journey.name, user.user_id)
        if latest is not None:
            if latest.status == RunStatus.ACTIVE or journey.reentry.policy == "never":
                return None
            if occasion is not None and latest.context.get("occasion") == occasion:
                return None
            ended = latest.updated_at or latest.entered_at
            if now - ended < journey.reentry.cooldown:
                return None
        if journey.consent_purpose and not self._allowed(
            tenant, user.user_id, journey.consent_purpose
        ):
            return None
        run = JourneyRun(
            run_id=uuid.uuid4().hex,
            tenant=tenant,
            journey=journey.name,
            user_id=user.user_id,
            entered_at=now,
            context={**context, "events": [],
                     **({"occasion": occasion} if occasion is not None else {})},
            updated_at=now,
        )
        self._advance(run, journey, now)
        return run

    def _allowed(self, tenant: str, user_id: str, purpose: str) -> bool:
        return self.consent is None or self.consent(tenant, user_id, purpose)

    def _advance(self, run: JourneyRun, journey: JourneyDefinition, now: datetime) -> None:
        for _ in range(_MAX_STEPS_PER_ADVANCE):
            if run.status != RunStatus.ACTIVE:
                return
            if run.step_index >= len(journey.steps):
                self._end(run, now, RunStatus.COMPLETED, None)
                return
            step = journey.steps[run.step_index]
            if isinstance(step, WaitStep):
                if not self._wait(run, step, now):
                    self.runs.save(run)
                    return
            elif isinstance(step, ConditionStep):
                self._jump(
                    run, journey, step.then if self._holds(run, step) else step.otherwise, now
                )
            elif isinstance(step, SendStep):
                self._send(run, journey, step, now)
        self._exit(run, now, "too many steps without a wait (loop?)")

    def _wait(self, run: JourneyRun, step: WaitStep, now: datetime) -> bool:
        """True when the wait is over (the run moved past it)."""
        if run.context.get("waiting_for") != step.id:
            if step.duration is not None:
                wake = now + step.duration
            else:
                user = self.users(run.tenant, run.user_id)
                wake = (
                    self.send_time(user, now, step.within)
                    if self.send_time is not None and user is not None
                    else now
                )
            run.context["waiting_for"] = step.id
            run.wake_at = wake
            run.updated_at = now
        if run.wake_at is not None and run.wake_at > now:
            return False
        run.context.pop("waiting_for", None)
        run.wake_at = None
        run.step_index += 1
        return True

    def _holds(self, run: JourneyRun, step: ConditionStep) -> bool:
        user = self.users(run.tenant, run.user_id)
        record = record_of(user)
        if self.insights is not None and any(c.field.startswith("insights.") for c in step.all):
            record["insights"] = self.insights(run.tenant, run.user_id)
        if not all_hold(step.all, record):
            return False
        if step.events_since_entry is not None:
            rule = step.events_since_entry
            count = sum(1 for e in run.context.get("events", []) if e["type"] == rule.type)
            if not rule.holds(count):
                return False
        return True

    def _jump(
        self, run: JourneyRun, journey: JourneyDefinition, target: str, now: datetime
    ) -> None:
        if target == "next":
            run.step_index += 1
        elif target == "end":
            self._end(run, now, RunStatus.COMPLETED, None)
        elif target == "exit":
            self._exit(run, now, "condition")
        else:
            run.step_index = journey.index_of(target)

    def _send(
        self, run: JourneyRun, journey: JourneyDefinition, step: SendStep, now: datetime
    ) -> None:
        if not step.transactional:
            if self.suppressions is not None and self.suppressions.is_suppressed(
                run.tenant, run.user_id, step.channel
            ):
                self._exit(run, now, "unsubscribed")
                return
            purpose = step.purpose or journey.consent_purpose
            if purpose and not self._allowed(run.tenant, run.user_id, purpose):
                self._exit(run, now, "consent_withdrawn")
                return
        context: dict[str, Any] = {
            "journey": journey.name,
            "run_id": run.run_id,
            "event": run.context.get("event", {}),
            "cart_item_ids": _cart(run),
        }
        if step.discount_percent is not None:
            code = hashlib.sha256(f"{run.tenant}:{run.run_id}".encode()).hexdigest()[:8].upper()
            context["discount"] = {"percent": step.discount_percent, "code": code}
        template = step.template
        if step.variants:  # an A/B/n test of this step: the person's variant, logged with it
            experiment = step_experiment(journey.name, step.id, step.variants,
                                         step.primary_metric)
            chosen = variant_for(experiment, run.user_id) or step.variants[0].name
            arm = next(v for v in step.variants if v.name == chosen)
            template = arm.template or step.template
            context |= {"campaign": experiment.name, "variant": arm.name, "phase": TEST_PHASE}
            context |= {k: v for k, v in (("subject", arm.subject), ("tone", arm.tone)) if v}
        message = new_message(
            run.tenant,
            run.user_id,
            template,
            channel=step.channel,
            dedup_key=_send_key(run, journey, step),
            context=context,
            transactional=step.transactional,
            purpose=step.purpose,
            now=now,
        )
        self.outbox.enqueue(message)
        run.context.setdefault("sent", []).append(message.message_id)
        run.step_index += 1
        run.updated_at = now

    def _exit(self, run: JourneyRun, now: datetime, reason: str) -> None:
        self._end(run, now, RunStatus.EXITED, reason)


    def _end(self, run: JourneyRun, now: datetime, status: RunStatus, reason: str | None) -> None:
        run.status = status
        run.exit_reason = reason
        run.wake_at = None
        run.updated_at = now
        self.runs.save(run)


class _BatchRuns:
    """The journey runs of one batch's people, in memory; writes are collected and flushed
    to ``base`` in one :meth:`JourneyStateStore.save_many` call. Only what
    :meth:`JourneyEngine.handle_event` asks (``active``, ``latest``, ``save``) is served from
    memory; anything else goes to ``base``."""

    def __init__(
        self, base: JourneyStateStore, tenant: str, active: Mapping[str, list[JourneyRun]]
    ) -> None:
        self._base, self._tenant = base, tenant
        self._runs: dict[str, JourneyRun] = {}
        self._by_user: dict[str, list[JourneyRun]] = {}
        self._latest: dict[tuple[str, str], JourneyRun | None] = {}
        self._dirty: dict[str, JourneyRun] = {}
        for loaded in active.values():
            for run in loaded:
                self._remember(run)

    def _remember(self, run: JourneyRun) -> None:
        if run.run_id not in self._runs:
            self._by_user.setdefault(run.user_id, []).append(run)
        else:
            mine = self._by_user[run.user_id]
            mine[mine.index(self._runs[run.run_id])] = run
        self._runs[run.run_id] = run
        key = (run.journey, run.user_id)
        if key in self._latest:
            known = self._latest[key]
            if known is None or (run.entered_at, run.run_id) >= (known.entered_at, known.run_id):
                self._latest[key] = run

    def preload_latest(self, journeys: Sequence[str], user_ids: Sequence[str]) -> None:
        found = self._base.latest_many(self._tenant, journeys, user_ids)
        for journey in journeys:
            for user_id in user_ids:
                run = found.get((journey, user_id))
                if run is not None and run.run_id in self._runs:
                    run = self._runs[run.run_id]  # the copy this batch works on
                self._latest[(journey, user_id)] = run

    def has_active(self, user_id: str) -> bool:
        return any(r.status == RunStatus.ACTIVE for r in self._by_user.get(user_id, ()))

    def active(self, tenant: str, user_id: str) -> list[JourneyRun]:
        if tenant != self._tenant:
            return self._base.active(tenant, user_id)
        runs = [r for r in self._by_user.get(user_id, ()) if r.status == RunStatus.ACTIVE]
        return sorted(runs, key=lambda r: r.entered_at)

    def latest(self, tenant: str, journey: str, user_id: str) -> JourneyRun | None:
        key = (journey, user_id)
        if tenant != self._tenant:
            return self._base.latest(tenant, journey, user_id)
        if key not in self._latest:
            stored = self._base.latest(tenant, journey, user_id)
            candidates = [r for r in self._by_user.get(user_id, ()) if r.journey == journey]
            if stored is not None and stored.run_id not in self._runs:
                candidates.append(stored)
            self._latest[key] = max(
                candidates, key=lambda r: (r.entered_at, r.run_id), default=None
            )
        return self._latest[key]

    def save(self, run: JourneyRun) -> None:
        if run.tenant != self._tenant:
            self._base.save(run)
            return
        self._remember(run)
        self._dirty[run.run_id] = run

    def save_many(self, runs: Sequence[JourneyRun]) -> None:
        for run in runs:
            self.save(run)

    def active_many(self, tenant: str, user_ids: Sequence[str]) -> dict[str, list[JourneyRun]]:
        found = {u: self.active(tenant, u) for u in user_ids}
        return {u: runs for u, runs in found.items() if runs}

    def latest_many(
        self, tenant: str, journeys: Sequence[str], user_ids: Sequence[str]
    ) -> dict[tuple[str, str], JourneyRun]:
        found = {(j, u): self.latest(tenant, j, u) for j in journeys for u in user_ids}
        return {k: run for k, run in found.items() if run is not None}

    def due(self, tenant: str, now: datetime, *, limit: int = 1000) -> list[JourneyRun]:
        return self._base.due(tenant, now, limit=limit)

    def delete_user(self, tenant: str, user_id: str) -> int:
        return self._base.delete_user(tenant, user_id)

    def flush(self) -> None:
        dirty, self._dirty = list(self._dirty.values()), {}
        self._base.save_many(dirty)


class _BatchUsers:
    """A user lookup memoized for one batch, prefilled with one bulk read when possible."""

    def __init__(
        self, one: UserLookup, many: UsersMany | None, tenant: str, user_ids: Sequence[str]
    ) -> None:
        self._one, self._tenant = one, tenant
        self._seen: dict[str, User | None] = {}
        if many is not None and user_ids:
            found = many(tenant, user_ids)
            self._seen = {u: found.get(u) for u in user_ids}

    def __call__(self, tenant: str, user_id: str) -> User | None:
        if tenant != self._tenant:
            return self._one(tenant, user_id)
        if user_id not in self._seen:
            self._seen[user_id] = self._one(tenant, user_id)
        return self._seen[user_id]


class _BatchHistory:
    """A history lookup memoized for one batch, prefilled with one bulk read when possible."""

    def __init__(
        self, one: History, many: HistoryMany | None, tenant: str, user_ids: Sequence[str]
    ) -> None:
        self._one, self._tenant = one, tenant
        self._seen: dict[str, Sequence[Event]] = {}
        if many is not None and user_ids:
            found = many(tenant, user_ids)
            self._seen = {u: found.get(u, ()) for u in user_ids}

    def __call__(self, tenant: str, user_id: str) -> Sequence[Event]:
        if tenant != self._tenant:
            return self._one(tenant, user_id)
        if user_id not in self._seen:
            self._seen[user_id] = self._one(tenant, user_id)
        return self._seen[user_id]


def _batch_consent(
    consent: Callable[[str, str, str], bool], tenant: str, people: Sequence[str]
) -> Callable[[str, str, str], bool]:
    """The consent check for one batch: read for all its people at once when the check can
    (``for_people``, as the messaging runtime's does), else the check itself."""
    for_people = getattr(consent, "for_people", None)
    return consent if for_people is None or not people else for_people(tenant, people)


def _memo3(fn: Callable[[str, str, str], bool]) -> Callable[[str, str, str], bool]:
    seen: dict[tuple[str, str, str], bool] = {}

    def memo(a: str, b: str, c: str) -> bool:
        if (a, b, c) not in seen:
            seen[(a, b, c)] = fn(a, b, c)
        return seen[(a, b, c)]

    return memo


def _event_context(event: Event) -> dict[str, Any]:
    return {
        "type": event.type,
        "item_id": event.item_id,
        "value": event.value,
        "price": event.price,
        **event.properties,
    }


def _cart(run: JourneyRun) -> list[str]:
    ids: list[str] = []
    first = run.context.get("trigger_item_id")
    if first and run.context.get("event", {}).get("type") == "add_to_cart":
        ids.append(first)
    for e in run.context.get("events", []):
        if e["type"] == "add_to_cart" and e.get("item_id") and e["item_id"] not in ids:
            ids.append(e["item_id"])
        elif e["type"] == "remove_from_cart" and e.get("item_id") in ids:
            ids.remove(e["item_id"])
    return ids


def _send_key(run: JourneyRun, journey: JourneyDefinition, step: SendStep) -> str:
    """The outbox idempotency key of a send step: per person and occasion when the run has one
    (two runs for one birthday enqueue one message), else per run."""
    occasion = run.context.get("occasion")
    if occasion is None:
        return f"journey:{run.run_id}:{step.id}"
    return f"journey:{journey.name}:{run.user_id}:{occasion}:{step.id}"
