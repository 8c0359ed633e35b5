"""Data-subject export: everything stored about one person, as JSON and as a ZIP of CSV files.

The export reads every store by the person's ids only (``for_user`` covers linked anonymous
ids), so it can never contain another person's records.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from personify.domain.events import Event
from personify.privacy.consent import ConsentPolicy
from personify.privacy.preferences import PreferenceStore
from personify.storage.online.port import OnlineState, UserState
from personify.storage.ports import CatalogStore, ConsentStore, EventStore, UserStore

PAGE = 1_000
MAX_EVENTS = 1_000_000
NO_MESSAGING = "no messaging store is configured in this process: no messages are recorded here"
NO_SEGMENTS = "segments are computed at request time from the profile and are not stored"
NO_INSIGHTS = "no insights service is configured in this process: nothing computed is included"

MessagesReader = Callable[[str, str], list[dict[str, Any]]]
"""``(tenant, user_id) -> messages sent to them`` (from the messaging capability)."""
InsightsReader = Callable[[str, str], dict[str, Any]]
"""``(tenant, user_id) -> what is computed about them`` (profile, predictions, segments)."""


@dataclass
class ExportSources:
    """The stores an export reads; the optional ones may be absent in a given process."""

    users: UserStore
    events: EventStore
    consents: ConsentStore
    catalog: CatalogStore | None = None
    state: OnlineState | None = None
    preferences: PreferenceStore | None = None
    policy: ConsentPolicy | None = None
    messages: MessagesReader | None = None
    insights: InsightsReader | None = None


def person_events(events: EventStore, tenant: str, user_id: str) -> list[Event]:
    """Every event of the person (and linked anonymous ids), oldest first, read page by page."""
    out: dict[str, Event] = {}
    before: datetime | None = None
    while len(out) < MAX_EVENTS:
        page = events.for_user(tenant, user_id, limit=PAGE, before=before)
        fresh = [e for e in page if e.event_id not in out]
        out.update((e.event_id, e) for e in fresh)
        if len(page) < PAGE or not fresh:
            break
        before = page[-1].timestamp
    return sorted(out.values(), key=lambda e: (e.timestamp, e.event_id))


def export_person(sources: ExportSources, tenant: str, user_id: str) -> dict[str, Any]:
    """The whole JSON-ready export of one person."""
    user = sources.users.get(tenant, user_id)
    events = person_events(sources.events, tenant, user_id)
    subjects = [user_id, *(f"anon:{a}" for a in (user.anonymous_ids if user else []))]
    consents = [c for s in subjects for c in sources.consents.history(tenant, s)]
    data: dict[str, Any] = {
        "format": "personify-export/1",
        "tenant": tenant,
        "user_id": user_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "profile": user.model_dump(mode="json") if user is not None else None,
        "consents": [c.model_dump(mode="json") for c in consents],
        "events": [e.model_dump(mode="json", exclude_none=True) for e in events
                   if e.type != "impression"],
        "recommendations": [_impression(e) for e in events if e.type == "impression"],
        "inferred": _inferred(sources, tenant, subjects, events),
        "segments": {"items": [], "note": NO_SEGMENTS},
        "preferences": None,
        "messages": {"items": [], "note": NO_MESSAGING},
        "insights": {"note": NO_INSIGHTS},
    }
    if sources.policy is not None:
        decisions = sources.policy.decide_all(tenant, user_id)
        data["consent_decisions"] = {
            p: {"allowed": d.allowed, "basis": d.basis} for p, d in decisions.items()
        }
    if sources.preferences is not None:
        prefs = sources.preferences.get(tenant, user_id)
        data["preferences"] = prefs.model_dump(mode="json") if prefs is not None else None
    if sources.messages is not None:
        data["messages"] = {"items": sources.messages(tenant, user_id), "note": ""}
    if sources.insights is not None:
        insights = sources.insights(tenant, user_id)
        data["insights"] = insights
        data["segments"] = {"items": insights.get("segments", []),
                            "note": "live segments the person belongs to now"}
    return data


def _impression(event: Event) -> dict[str, Any]:
    props = event.properties
    return {
        "recommendation_id": event.recommendation_id,
        "shown_at": event.timestamp.isoformat(),
        "items": list(event.item_ids or []),
        "sources": props.get("sources", []),
        "explanations": props.get("explanations", []),
        "personalized": props.get("personalized"),
        "model_version": props.get("model_version"),
    }


def _inferred(
    sources: ExportSources, tenant: str, subjects: Sequence[str], events: Sequence[Event]
) -> dict[str, Any]:
    """What the engine derived: live online state and the categories of what they used."""
    states: list[UserState] = []
    if sources.state is not None:
        states = [sources.state.user_state(tenant, s) for s in subjects]
    recent = sorted(
        ((i.timestamp, i.item_id, i.type) for st in states for i in st.recent), reverse=True
    )
    item_ids = [e.item_id for e in events if e.item_id is not None and e.type != "impression"]
    categories: Counter[str] = Counter()
    if sources.catalog is not None and item_ids:
        for item in sources.catalog.get_many(tenant, list(dict.fromkeys(item_ids))).values():
            categories.update(item.categories)
    return {
        "recent_items": [
            {"item_id": item, "type": kind, "at": at.isoformat()} for at, item, kind in recent
        ],
        "bought": sorted({i for st in states for i in st.bought}),
        "disliked": sorted({i for st in states for i in st.disliked}),
        "top_categories": [c for c, _ in categories.most_common(20)],
    }


CSV_TABLES: Mapping[str, tuple[str, ...]] = {
    "events": ("event_id", "type", "timestamp", "item_id", "user_id", "anonymous_id",
               "recommendation_id", "value", "quantity", "price", "order_id", "properties"),
    "consents": ("purpose", "state", "source", "text_version", "recorded_at", "expires_at",
                 "user_id"),
    "recommendations": ("recommendation_id", "shown_at", "items", "sources", "explanations",
                        "personalized", "model_version"),
    "recent_items": ("item_id", "type", "at"),
    "messages": ("kind", "message_id", "entry_id", "channel", "template", "purpose", "status",
                 "subject", "text", "created_at", "sent_at", "read_at"),
}


def export_archive(data: Mapping[str, Any]) -> bytes:
    """A ZIP: ``export.json`` (everything) and one CSV per list (events, consents, messages
    ...)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export.json", orjson.dumps(data, option=orjson.OPT_INDENT_2))
        rows_of = {
            "events": data.get("events", []),
            "consents": data.get("consents", []),
            "recommendations": data.get("recommendations", []),
            "recent_items": data.get("inferred", {}).get("recent_items", []),
            "messages": (data.get("messages") or {}).get("items", []),
        }
        for name, columns in CSV_TABLES.items():
            archive.writestr(f"{name}.csv", _csv(rows_of[name], columns))
        profile = data.get("profile") or {}
        flat = {**{f"profile.{k}": v for k, v in (profile.get("profile") or {}).items()},
                **{k: v for k, v in profile.items() if k != "profile"}}
        archive.writestr("profile.csv", _csv([flat] if profile else [], tuple(flat)))
    return buffer.getvalue()


def _csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)
