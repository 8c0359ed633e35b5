"""Users: search, a person's profile, consents, activity, recommendations ("view as this
user" with a context switcher and a test click), networking (people to meet and the feed, with
reasons and source attribution), export and erasure."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, cast

from fastapi import Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from personify.dashboard.pages.common import page_router, tenant
from personify.dashboard.recommendation_preview import (
    CHANNELS,
    DEVICES,
    REPETITION,
    WEATHER,
    parse_choice,
    preview_recommendations,
)
from personify.dashboard.rendering import language, render
from personify.dashboard.state import engine, ingestor, insights, runtime, stores
from personify.dashboard.user_data import ErasureOutcome, export_user
from personify.domain.errors import Unavailable
from personify.domain.events import Context, Event
from personify.insights.service import Insights
from personify.serving.request import RecommendationRequest
from personify.storage.online.port import UserState
from personify.storage.registry import Stores

router = page_router()
PAGE_SIZE = 50
TIMELINE_LENGTH = 50


@router.get("/users")
def user_list(
    request: Request,
    q: Annotated[str, Query(max_length=200)] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    who = tenant(request)
    found = stores(request).users.list(who, query=q or None, limit=PAGE_SIZE + 1, offset=offset)
    return render(
        request, "users.html", section="users", users=found[:PAGE_SIZE], q=q, offset=offset,
        more=len(found) > PAGE_SIZE, page_size=PAGE_SIZE,
    )


def _inferred_interests(st: Stores, who: str, events: list[Event]) -> list[tuple[str, int]]:
    """The categories of the items the person interacted with most recently, by count."""
    ids = [e.item_id for e in events if e.item_id]
    items = st.catalog.get_many(who, list(dict.fromkeys(ids))) if ids else {}
    counts: Counter[str] = Counter()
    for item_id in ids:
        item = items.get(item_id)
        if item is not None:
            counts.update(item.categories)
    return counts.most_common(8)


@router.get("/users/{user_id}")
def user_detail(request: Request, user_id: str) -> Response:
    who = tenant(request)
    st = stores(request)
    user = st.users.get(who, user_id)
    events = st.events.for_user(who, user_id, limit=TIMELINE_LENGTH)
    if user is None and not events:
        return render(request, "user_missing.html", section="users", user_id=user_id,
                      erased=st.erasures.is_erased(who, user_id), error="", status_code=404)
    titles = {
        k: v.title
        for k, v in st.catalog.get_many(
            who, list({e.item_id for e in events if e.item_id})
        ).items()
    }
    eng = engine(request)
    used = _state_in_use(eng, who, user_id) if eng is not None else None
    user_state = used.state if used is not None else None
    if user_state is not None:
        wanted = {i.item_id for i in user_state.recent[:5]} | set(list(user_state.bought)[:5])
        titles |= {k: v.title for k, v in st.catalog.get_many(
            who, [i for i in wanted if i not in titles]).items()}
    service = insights(request)
    computed = service.insights(who, user_id) if service is not None else None
    return render(
        request,
        "user.html",
        section="users",
        user_id=user_id,
        user=user,
        events=events,
        titles=titles,
        consents=st.consents.current(who, user_id),
        consent_history=st.consents.history(who, user_id)[-20:],
        interests=_inferred_interests(st, who, events),
        user_state=user_state,
        state_source=used.source if used is not None else "",
        state_notes=used.notes if used is not None else [],
        devices=DEVICES,
        channels=CHANNELS,
        weathers=WEATHER,
        repetitions=REPETITION,
        hours=range(24),
        insights=computed,
        heat=_heat(computed),
    )


@dataclass(frozen=True)
class StateInUse:
    """What the serving chain reads about a person now: ``source`` is ``live`` (the online
    state), ``history`` (their stored events: the live state does not know them — a restart,
    an expired or a Redis outage), ``none`` (nothing yet) or ``not_personalized`` (no consent,
    restricted: the chain reads nothing of theirs; ``notes`` says why)."""

    state: UserState | None
    source: str
    notes: list[str]


def _state_in_use(eng: Any, tenant: str, user_id: str) -> StateInUse:
    scope = eng.service.scope_for(tenant, RecommendationRequest(user_id=user_id,
                                                                log_impression=False))
    notes = [w for w in scope.warnings if not w.startswith("no trained model")]
    if not scope.personalized:
        return StateInUse(None, "not_personalized", notes)
    used = scope.user_state
    if used is None or not used.recent:
        return StateInUse(used, "none", notes)
    try:
        live = eng.state.user_state(tenant, user_id)
    except Unavailable:
        live = None
    return StateInUse(used, "live" if live is not None and live.recent else "history", notes)


def _heat(computed: Insights | None) -> list[list[float]]:
    """The rhythm as 7 rows (Monday first) of 24 shares of the busiest hour (0-1)."""
    if computed is None or computed.profile is None:
        return []
    hours = computed.profile.rhythm.hour_of_week
    top = max(hours) or 1
    return [[h / top for h in hours[d * 24:(d + 1) * 24]] for d in range(7)]


def _recommendations_panel(request: Request, user_id: str, *, flash: str = "") -> Response:
    eng = engine(request)
    if eng is None:
        return render(request, "panels/not_configured.html", what="engine")
    q = request.query_params
    choice = parse_choice(q.get("device"), q.get("hour"), q.get("country"), q.get("channel"),
                          weather=q.get("weather"), temperature=q.get("temperature"),
                          repetition=q.get("repetition"))
    lang = cast(Any, language(request))
    preview = preview_recommendations(eng.service, tenant(request), user_id, choice,
                                      language=lang)
    return render(request, "panels/recommendations.html", user_id=user_id, p=preview,
                  choice=choice, flash=flash)


def _network_panel(request: Request, user_id: str) -> Response:
    rt = runtime(request)
    who = tenant(request)
    if rt.erasure_check(who, user_id):  # nothing is computed for an erased person
        return Response('<div id="network"></div>', media_type="text/html")
    people = rt.networking.people(who, user_id, 5)
    feed = rt.feed.feed(who, user_id, 10)
    return render(request, "panels/network.html", user_id=user_id, people=people, feed=feed)


@router.get("/users/{user_id}/network")
async def user_network(request: Request, user_id: str) -> Response:
    """People to meet and the networking feed of this person (``/people``, ``/feed``)."""
    return await run_in_threadpool(_network_panel, request, user_id)


@router.get("/users/{user_id}/recommendations")
async def user_recommendations(request: Request, user_id: str) -> Response:
    return await run_in_threadpool(_recommendations_panel, request, user_id)


@router.post("/users/{user_id}/click")
async def test_click(
    request: Request, user_id: str, item_id: Annotated[str, Form(min_length=1, max_length=256)]
) -> Response:
    """Record a click by this person (marked ``origin: dashboard``) and show the new list."""
    event = Event(
        event_id=f"dashboard-{uuid.uuid4().hex}",
        type="click",
        user_id=user_id,
        item_id=item_id.strip(),
        timestamp=datetime.now(UTC),
        context=Context(channel="web"),
        properties={"origin": "dashboard"},
    )
    result = await run_in_threadpool(ingestor(request).ingest, tenant(request), [event])
    rejected = getattr(result, "rejected", [])
    flash = "click_rejected" if rejected else "click_recorded"
    if request.headers.get("hx-request"):
        return await run_in_threadpool(_recommendations_panel, request, user_id, flash=flash)
    return RedirectResponse(f"/dashboard/users/{user_id}", status_code=303)


@router.get("/users/{user_id}/export")
async def export(request: Request, user_id: str) -> Response:
    """Everything stored about the person as one JSON download."""
    data = await run_in_threadpool(export_user, stores(request), tenant(request), user_id)
    body = json.dumps(data, ensure_ascii=False, indent=2)
    safe_name = "".join(c if c.isalnum() or c in "-_" else "_" for c in user_id)[:64]
    return Response(
        body,
        media_type="application/json",
        headers={"content-disposition": f'attachment; filename="user-{safe_name}.json"'},
    )


@router.post("/users/{user_id}/erase")
async def erase(
    request: Request, user_id: str, confirm: Annotated[str, Form(max_length=256)] = ""
) -> Response:
    """Erase the person after the operator typed their id to confirm."""
    if confirm.strip() != user_id:
        return render(request, "user_missing.html", section="users", user_id=user_id,
                      erased=False, error="erase_confirm_mismatch", status_code=400)
    # the application's full erasure: stores, online state, served model influence and every
    # capability's erasure hook
    erase_everywhere = runtime(request).erase_subjects
    results = await run_in_threadpool(lambda: erase_everywhere(tenant(request), user_ids=[user_id]))
    first = results[0]
    outcome = ErasureOutcome(first.receipt_id, first.profile_deleted, first.events_deleted,
                             first.consents_deleted)
    return render(request, "user_erased.html", section="users", user_id=user_id, outcome=outcome)
