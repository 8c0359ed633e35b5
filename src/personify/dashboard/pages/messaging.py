"""Messaging: templates with a live preview for a chosen person, journeys, delivery counts."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from personify.dashboard.message_library import parse_template_yaml, template_yaml
from personify.dashboard.pages.common import page_router, tenant
from personify.dashboard.rendering import render
from personify.dashboard.state import dashboard, engine, runtime, stores
from personify.domain.errors import PersonifyError
from personify.domain.items import Item
from personify.domain.users import User
from personify.messaging.demo_mailbox import mailbox
from personify.messaging.journey_definitions import builtin_journeys
from personify.messaging.templates import RenderedMessage, preview
from personify.serving.request import RecommendationRequest

router = page_router()
PREVIEW_DISCOUNT = {"percent": 10, "code": "PREVIEW10"}
MAX_TEMPLATE_FORM = 200_000
SENT_SHOWN = 100


def _delivery_counts(request: Request) -> dict[str, int] | None:
    counts: dict[str, int] = runtime(request).messaging.state.outbox.counts(tenant(request))
    return counts


@router.get("/messaging")
def messaging_page(
    request: Request,
    template: Annotated[str, Query(max_length=64)] = "",
    user: Annotated[str, Query(max_length=256)] = "",
) -> Response:
    state = dashboard(request)
    names = sorted(state.templates)
    chosen = template if template in state.templates else (names[0] if names else "")
    sample_user = user or next(
        (u.user_id for u in stores(request).users.list(tenant(request), limit=1)), ""
    )
    return render(
        request,
        "messaging.html",
        section="messaging",
        names=names,
        chosen=chosen,
        source=template_yaml(state.templates[chosen]) if chosen else "",
        user_id=sample_user,
        in_memory=state.templates_in_memory,
        journeys=sorted(builtin_journeys().values(), key=lambda j: j.name),
        delivery=_delivery_counts(request),
    )


@router.get("/messaging/sent")
def sent_page(request: Request) -> Response:
    """What the demo 'sent': the demo mailbox's messages, newest first, rendered."""
    messaging = runtime(request).messaging
    tests = []
    for stored in messaging.definitions.campaigns(tenant(request)):
        if stored.body.get("variants"):
            try:
                tests.append(messaging.test_results(tenant(request), stored.name)[3]
                             | {"name": stored.name})
            except PersonifyError:  # a campaign stored by an older version, say
                continue
    return render(
        request,
        "messaging_sent.html",
        section="messaging",
        tests=tests,
        mails=mailbox(messaging.definitions.store, tenant(request), limit=SENT_SHOWN),
        demo=runtime(request).settings.demo,
        smtp=bool(runtime(request).settings.smtp_host),
    )


def _cart(request: Request, who: str, user_id: str) -> list[Item]:
    st = stores(request)
    events = st.events.for_user(who, user_id, limit=20,
                                types=["add_to_cart", "remove_from_cart", "purchase"])
    cart: dict[str, None] = {}
    for e in reversed(events):
        if e.item_id is None:
            continue
        if e.type == "add_to_cart":
            cart[e.item_id] = None
        else:
            cart.pop(e.item_id, None)
    found = st.catalog.get_many(who, list(cart))
    return [found[i] for i in cart if i in found]


def _render_preview(request: Request, source: str, user_id: str) -> Response:
    who = tenant(request)
    try:
        template = parse_template_yaml(source)
    except PersonifyError as exc:
        return render(request, "panels/message_preview.html", message=None, error=exc.message)
    person = stores(request).users.get(who, user_id) if user_id else None
    user = person or User(user_id=user_id or "preview")
    items: list[Item] = []
    eng = engine(request)
    if eng is not None and template.recommendations and user_id:
        result = eng.service.recommend(
            who,
            RecommendationRequest(user_id=user_id, n=template.recommendations,
                                  log_impression=False),
        )
        items = [i.item for i in result.items if i.item is not None]
    try:
        message: RenderedMessage = preview(
            template, user, recommendations=items, cart=_cart(request, who, user_id),
            discount=PREVIEW_DISCOUNT,
        )
    except PersonifyError as exc:
        return render(request, "panels/message_preview.html", message=None, error=exc.message)
    return render(request, "panels/message_preview.html", message=message, error="",
                  known_user=person is not None, recommended=len(items))


@router.post("/messaging/preview")
async def preview_message(
    request: Request,
    template_yaml: Annotated[str, Form(max_length=MAX_TEMPLATE_FORM)],
    user_id: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Render the edited template for the chosen person (nothing is sent or tracked)."""
    return await run_in_threadpool(_render_preview, request, template_yaml, user_id.strip())


@router.post("/messaging/templates")
async def save_template(
    request: Request,
    template_yaml: Annotated[str, Form(max_length=MAX_TEMPLATE_FORM)],
    user_id: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    try:
        template = parse_template_yaml(template_yaml)
    except PersonifyError as exc:
        return render(request, "panels/message_preview.html", message=None, error=exc.message,
                      status_code=400)
    dashboard(request).templates[template.name] = template
    return RedirectResponse(
        f"/dashboard/messaging?template={template.name}&user={user_id}", status_code=303
    )
