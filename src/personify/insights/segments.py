"""Live segments: definitions (a rule in the language of :mod:`personify.insights.rules`) kept per
tenant, a person's facts (profile, predictions, recent events), and the membership tracker that
re-evaluates the person concerned on each ingested batch and tells listeners who entered or left.

Definitions are one JSON file per tenant under the model directory (written atomically, re-read
when another process changed it). Memberships live in the serving process: the first evaluation
of a person after a start sets their baseline without entry events; entries and exits are the
transitions seen after that.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from personify.domain.errors import Conflict, NotFound
from personify.domain.events import Event
from personify.domain.items import Item
from personify.domain.users import User
from personify.insights.rules import RuleError, evaluate, parse_text, references, to_text, validate

SEGMENT_ID = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
MAX_SEGMENTS = 200


class SegmentIn(BaseModel):
    """A segment as written: ``rule`` (JSON form) or ``text`` (readable form), exactly one."""

    name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    rule: dict[str, Any] | None = None
    text: str | None = Field(default=None, max_length=4000)


class Segment(BaseModel):
    segment_id: str
    name: str
    description: str = ""
    rule: dict[str, Any]
    text: str
    created_at: datetime
    updated_at: datetime


def rule_of(body: SegmentIn) -> dict[str, Any]:
    if (body.rule is None) == (body.text is None):
        raise RuleError("give the rule either as JSON (rule) or as text (text)", field="rule",
                        accepted='"rule": {...} or "text": "churn_risk > 0.7 and ..."')
    return parse_text(body.text) if body.text is not None else validate(body.rule)


def check_graph(segments: Mapping[str, Segment], segment_id: str, rule: Mapping[str, Any],
                ) -> None:
    """Refuse references to unknown segments and cycles (a segment that reaches itself)."""
    graph = {sid: references(s.rule) for sid, s in segments.items()}
    graph[segment_id] = references(rule)
    for ref in graph[segment_id]:
        if ref not in graph:
            raise RuleError(f"unknown segment {ref!r}", field="rule",
                            accepted="the id of an existing segment: " + ", ".join(sorted(graph)))
    path: list[str] = []

    def visit(node: str, seen: set[str]) -> None:
        for ref in graph.get(node, ()):
            if ref == segment_id:
                cycle = " -> ".join([segment_id, *path, ref]) if path else f"{segment_id} -> {ref}"
                raise RuleError(f"segment cycle: {cycle}", field="rule",
                                accepted="references to segments that do not refer back")
            if ref not in seen:
                seen.add(ref)
                path.append(ref)
                visit(ref, seen)
                path.pop()

    visit(segment_id, set())


class SegmentFiles:
    """``<root>/segments/<tenant>.json``: the tenant's definitions."""

    def __init__(self, root: str | Path, clock: Callable[[], datetime]) -> None:
        self.root = Path(root) / "segments"
        self.clock = clock
        self._cache: dict[str, tuple[float, dict[str, Segment]]] = {}
        self._lock = threading.Lock()

    def _path(self, tenant: str) -> Path:
        return self.root / f"{tenant}.json"

    def all(self, tenant: str) -> dict[str, Segment]:
        path = self._path(tenant)
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return {}
        cached = self._cache.get(tenant)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        data = json.loads(path.read_text())
        segments = {d["segment_id"]: Segment.model_validate(d) for d in data["segments"]}
        self._cache[tenant] = (mtime, segments)
        return segments

    def _write(self, tenant: str, segments: Mapping[str, Segment]) -> None:
        path = self._path(tenant)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(
            {"segments": [s.model_dump(mode="json") for s in segments.values()]},
            ensure_ascii=False))
        os.replace(tmp, path)
        self._cache.pop(tenant, None)

    def put(self, tenant: str, segment_id: str, body: SegmentIn) -> Segment:
        if not SEGMENT_ID.match(segment_id):
            raise RuleError(f"bad segment id {segment_id!r}", field="segment_id",
                            accepted="1-64 lower-case letters, digits, '_' or '-'")
        rule = rule_of(body)
        with self._lock:
            segments = dict(self.all(tenant))
            if segment_id not in segments and len(segments) >= MAX_SEGMENTS:
                raise Conflict(f"a tenant has at most {MAX_SEGMENTS} segments",
                               field="segment_id", accepted="delete a segment first")
            check_graph(segments, segment_id, rule)
            now = self.clock()
            old = segments.get(segment_id)
            segment = Segment(
                segment_id=segment_id, name=body.name or segment_id,
                description=body.description, rule=rule, text=to_text(rule),
                created_at=old.created_at if old else now, updated_at=now,
            )
            segments[segment_id] = segment
            self._write(tenant, segments)
            return segment

    def delete(self, tenant: str, segment_id: str) -> None:
        with self._lock:
            segments = dict(self.all(tenant))
            if segment_id not in segments:
                raise NotFound(f"no segment {segment_id!r}", field="segment_id",
                               accepted="the id of an existing segment")
            users = [sid for sid, s in segments.items() if segment_id in references(s.rule)
                     and sid != segment_id]
            if users:
                raise Conflict(f"segment {segment_id!r} is used by {', '.join(sorted(users))}",
                               field="segment_id", accepted="a segment no other segment uses")
            del segments[segment_id]
            self._write(tenant, segments)


def recent_facts(events: Sequence[Event], items: Mapping[str, Item], now: datetime,
                 ) -> dict[str, Any]:
    week, month = now - timedelta(days=7), now - timedelta(days=30)
    viewed: set[str] = set()
    bought: set[str] = set()
    counts = {"purchases_7d": 0, "purchases_30d": 0, "views_7d": 0}
    for event in events:
        if event.timestamp > now or event.timestamp < month:
            continue
        item = items.get(event.item_id) if event.item_id else None
        cats = item.categories if item is not None else []
        if event.type == "purchase":
            counts["purchases_30d"] += 1
            bought.update(cats)
            if event.timestamp >= week:
                counts["purchases_7d"] += 1
        elif event.type == "view" and event.timestamp >= week:
            counts["views_7d"] += 1
            viewed.update(cats)
    return {**counts, "viewed_categories_7d": viewed, "bought_categories_30d": bought}


def user_facts(user: User | None) -> dict[str, Any]:
    if user is None:
        return {}
    p = user.profile
    return {
        "profile.country": p.country, "profile.city": p.city, "profile.language": p.language,
        "profile.industry": p.industry, "profile.profession": p.profession,
        "profile.skills": set(p.skills), "profile.interests": set(p.interests),
        "profile.goals": set(p.goals), "restricted": user.restricted,
    }


SNAPSHOT_EVERY = timedelta(hours=1)
MAX_SNAPSHOTS = 20_000
"""Snapshots kept per tenant (hourly: over two years)."""


class SegmentCounts:
    """Members per segment over time: ``<root>/segments/<tenant>.counts.jsonl``, one snapshot
    ``{"at": ..., "counts": {segment: members}}`` a line, appended by the tracker at most once
    per ``every`` (and by every full refresh)."""

    def __init__(self, root: str | Path, every: timedelta = SNAPSHOT_EVERY) -> None:
        self.root = Path(root) / "segments"
        self.every = every
        self._last: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def _path(self, tenant: str) -> Path:
        return self.root / f"{tenant}.counts.jsonl"

    def due(self, tenant: str, now: datetime) -> bool:
        with self._lock:
            last = self._last.get(tenant)
            if last is None:
                points = self.read(tenant, limit=1)
                last = points[-1][0] if points else None
                if last is not None:
                    self._last[tenant] = last
            return last is None or now - last >= self.every or now < last

    def record(self, tenant: str, now: datetime, counts: Mapping[str, int]) -> None:
        line = json.dumps({"at": now.isoformat(), "counts": dict(counts)}, sort_keys=True)
        with self._lock:
            path = self._path(tenant)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            self._last[tenant] = now
            if path.stat().st_size > MAX_SNAPSHOTS * 200:
                kept = path.read_text(encoding="utf-8").splitlines()[-MAX_SNAPSHOTS // 2:]
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text("\n".join(kept) + "\n", encoding="utf-8")
                os.replace(tmp, path)

    def read(self, tenant: str, *, since: datetime | None = None, limit: int = MAX_SNAPSHOTS,
             ) -> list[tuple[datetime, dict[str, int]]]:
        """The stored snapshots, oldest first (the newest ``limit``)."""
        try:
            lines = self._path(tenant).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out: list[tuple[datetime, dict[str, int]]] = []
        for line in lines[-limit:] if limit else []:
            try:
                data = json.loads(line)
                at = datetime.fromisoformat(data["at"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn line (a crash mid-write) is skipped
            if since is None or at >= since:
                out.append((at, {str(k): int(v) for k, v in data["counts"].items()}))
        return out

    def series(self, tenant: str, segment_id: str, *, since: datetime | None = None,
               ) -> list[tuple[datetime, int]]:
        return [(at, counts.get(segment_id, 0)) for at, counts in self.read(tenant, since=since)
                if segment_id in counts]


SegmentListener = Callable[[str, str, str, bool, datetime], None]
"""``(tenant, user_id, segment_id, entered, at)``: True on entry, False on exit."""


@dataclass
class Membership:
    segments: dict[str, datetime] = field(default_factory=dict)
    """segment id -> since when"""


class SegmentTracker:
    """Evaluates a person's segments from their facts and remembers memberships (per process)."""

    def __init__(self, files: SegmentFiles, clock: Callable[[], datetime],
                 history: SegmentCounts | None = None) -> None:
        self.files = files
        self.clock = clock
        self.history = history
        self.listeners: list[SegmentListener] = []
        self._members: dict[tuple[str, str], Membership] = {}
        self._lock = threading.Lock()

    def evaluate(self, tenant: str, facts: Mapping[str, Any]) -> list[str]:
        """The ids of the segments ``facts`` satisfy (references resolved, memoised)."""
        segments = self.files.all(tenant)
        memo: dict[str, bool] = {}

        def member(segment_id: str) -> bool:
            if segment_id not in memo:
                memo[segment_id] = False  # a cycle (refused at write) cannot recurse forever
                segment = segments.get(segment_id)
                memo[segment_id] = segment is not None and evaluate(segment.rule, facts, member)
            return memo[segment_id]

        return [sid for sid in segments if member(sid)]

    def update(self, tenant: str, user_id: str, facts: Mapping[str, Any] | None,
               ) -> dict[str, datetime]:
        """Re-evaluate one person (``facts`` None: not profiled, so in no segment) and notify
        entries / exits; returns their memberships with the time each began."""
        now = self.clock()
        inside = set(self.evaluate(tenant, facts)) if facts is not None else set()
        key = (tenant, user_id)
        with self._lock:
            known = self._members.get(key)
            before = dict(known.segments) if known is not None else None
            current = {s: (before or {}).get(s, now) for s in inside}
            self._members[key] = Membership(current)
        if before is not None:
            for sid in sorted(inside - set(before)):
                self._notify(tenant, user_id, sid, True, now)
            for sid in sorted(set(before) - inside):
                self._notify(tenant, user_id, sid, False, now)
        if self.history is not None and self.history.due(tenant, now):
            self.snapshot(tenant)
        return current

    def snapshot(self, tenant: str) -> dict[str, int]:
        """Store the current member counts (the time series of counts over time)."""
        counts = self.counts(tenant)
        if self.history is not None and counts:
            self.history.record(tenant, self.clock(), counts)
        return counts

    def memberships(self, tenant: str, user_id: str) -> set[str] | None:
        """The person's segments as last evaluated here, None when not evaluated yet."""
        with self._lock:
            known = self._members.get((tenant, user_id))
            return set(known.segments) if known is not None else None

    def members(self, tenant: str, segment_id: str) -> list[str]:
        with self._lock:
            return sorted(u for (t, u), m in self._members.items()
                          if t == tenant and segment_id in m.segments)

    def counts(self, tenant: str) -> dict[str, int]:
        out = dict.fromkeys(self.files.all(tenant), 0)
        with self._lock:
            for (t, _), membership in self._members.items():
                if t == tenant:
                    for sid in membership.segments:
                        if sid in out:
                            out[sid] += 1
        return out

    def forget(self, tenant: str, subjects: Sequence[str]) -> int:
        with self._lock:
            return sum(self._members.pop((tenant, s), None) is not None for s in subjects)

    def _notify(self, tenant: str, user_id: str, segment_id: str, entered: bool,
                at: datetime) -> None:
        import logging

        for listener in self.listeners:
            try:
                listener(tenant, user_id, segment_id, entered, at)
            except Exception:  # a listener never breaks ingestion
                logging.getLogger(__name__).exception("segment listener %r failed", listener)
