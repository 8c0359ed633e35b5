"""The web channel's routes (docs/web.md): the snippet itself (``/sdk/personify.js``), the
snippet's own calls that no other route covers (``identify`` at login, the ``sendBeacon`` batch
on page hide) and, in demo mode, the demo shop at ``/demo-shop``.

Events, recommendations, similar items and consent changes use the ordinary routes, which accept
a ``browser`` key bound to its visitor (``personify.api.deps.Access``).
"""

from __future__ import annotations

import html
import time
from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import HTMLResponse, Response

from personify.api.deps import (
    AdminAccess,
    BeaconAccess,
    EngineDep,
    ErasureCheckDep,
    IngestorDep,
    SettingsDep,
    StoresDep,
)
from personify.api.routers.events import ingest_batch
from personify.api.routing import KeyFirstRoute
from personify.domain import person_tokens
from personify.domain._fields import Identifier
from personify.domain.errors import Forbidden, NotFound
from personify.domain.items import Item
from personify.runtime.identity import link_anonymous, refuse_erased
from personify.settings import DEMO_BROWSER_KEY, Settings

router = APIRouter(tags=["web"], route_class=KeyFirstRoute)

SNIPPET = "personify.js"
"""The snippet in the package (``personify/api/static``); a copy of ``sdk/js/personify.js``,
the one source, kept identical by ``make sdk`` and checked by a test."""


@cache
def static_text(name: str) -> str:
    return (resources.files("personify.api") / "static" / name).read_text(encoding="utf-8")


@router.get("/sdk/personify.js", include_in_schema=False)
def snippet() -> Response:
    return Response(
        static_text(SNIPPET), media_type="application/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


class IdentifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Identifier
    anonymous_id: Identifier


class IdentifyOut(BaseModel):
    user_id: str
    anonymous_id: str
    linked: bool = True


@router.post(
    "/v1/browser/identify",
    response_model=IdentifyOut,
    summary="At login: merge the visitor's anonymous history into their user (browser key with "
    "a person token for the user, or admin)",
)
def identify(
    body: IdentifyIn, access: AdminAccess, stores: StoresDep, erased: ErasureCheckDep,
    engine: EngineDep,
) -> IdentifyOut:
    if access.visitor is not None:
        if access.visitor.user_id is None:
            raise Forbidden(
                "identify needs a person token for the user", field=person_tokens.HEADER,
                accepted="X-Personify-User-Id with a person token signed by the site's backend "
                "(docs/security.md)",
            )
        access.check(user_id=body.user_id)
        access.check(anonymous_id=body.anonymous_id, field="anonymous_id")
    refuse_erased(erased, access.tenant, body.user_id)
    link_anonymous(stores, access.tenant, body.user_id, body.anonymous_id, state=engine.state,
                   shown=engine.service.shown)
    return IdentifyOut(user_id=body.user_id, anonymous_id=body.anonymous_id)


@router.post(
    "/v1/events/beacon",
    summary="A batch sent by navigator.sendBeacon (key and visitor in the query string, body "
    "as text/plain JSON); otherwise as POST /v1/events/batch",
)
async def beacon(
    request: Request, access: BeaconAccess, ingestor: IngestorDep, settings: SettingsDep,
) -> Response:
    return await ingest_batch(request, access, ingestor, settings)


# --- the demo shop (demo mode only) ------------------------------------------------------------

DEMO_SHOPPER = "demo-shopper"
"""The user the demo shop's "log in" button signs in as."""


def _demo_only(settings: Settings) -> None:
    if not settings.demo:
        raise NotFound("the demo shop is served in demo mode only (personify demo)",
                       field="path", accepted="PERSONIFY_DEMO=1")


def _page(settings: Settings, title: str, body: str, *, product: str = "") -> HTMLResponse:
    e = html.escape
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · Personify demo shop</title>
<link rel="stylesheet" href="/demo-shop/shop.css"></head>
<body data-key="{e(DEMO_BROWSER_KEY)}" data-product="{e(product)}">
<header><a href="/demo-shop" class="brand">Personify demo shop</a>
<a href="/demo-shop/for-you" class="nav">For you</a>
<span id="who"></span> <button id="login" type="button">Log in as {e(DEMO_SHOPPER)}</button>
<button id="privacy" type="button">Privacy choices</button></header>
<div id="consent-banner" hidden role="dialog" aria-label="Cookie consent">
<p>We would like to remember what you look at to recommend products
(purposes: personalization, profiling).</p>
<button id="consent-accept" type="button">Accept</button>
<button id="consent-session" type="button">Only this visit (nothing stored)</button>
<button id="consent-decline" type="button">Decline</button></div>
<main>{body}</main>
<script src="/sdk/personify.js"></script>
<script src="/demo-shop/shop.js"></script>
</body></html>"""
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


def _card(item: Item) -> str:
    e = html.escape
    price = f"{item.price:.2f} {item.currency or ''}" if item.price is not None else ""
    title = e(item.title or item.item_id)
    return (
        f'<li class="card"><a href="/demo-shop/item/{e(item.item_id)}">{title}</a>'
        f' <span class="price">{e(price)}</span> <button type="button" '
        f'data-personify-track="add_to_cart" data-personify-item="{e(item.item_id)}">'
        "Add to cart</button></li>"
    )


@router.get("/demo-shop", include_in_schema=False)
def demo_shop(settings: SettingsDep, stores: StoresDep) -> HTMLResponse:
    _demo_only(settings)
    items = stores.catalog.list(settings.default_tenant, limit=12)
    body = (
        "<h1>Products</h1><ul class=\"grid\">" + "".join(_card(i) for i in items) + "</ul>"
        '<div class="spacer">Scroll down for your recommendations</div>'
        '<section><h2>Recommended for you</h2>'
        '<div id="home-row" data-personify-widget="home-row" data-n="6"></div></section>'
    )
    return _page(settings, "Home", body)


@router.get("/demo-shop/for-you", include_in_schema=False)
def demo_for_you(settings: SettingsDep) -> HTMLResponse:
    """A personalized page of rows (GET /v1/pages/home through the snippet): each row a
    carousel; an item's impression is reported once half of it is on screen."""
    _demo_only(settings)
    body = ('<h1>For you</h1>'
            '<div id="page-home" class="personify-page" data-personify-page="home"></div>')
    return _page(settings, "For you", body)


@router.get("/demo-shop/item/{item_id}", include_in_schema=False)
def demo_item(item_id: Identifier, settings: SettingsDep, stores: StoresDep) -> HTMLResponse:
    _demo_only(settings)
    item = stores.catalog.get(settings.default_tenant, item_id)
    if item is None:
        raise NotFound(f"item {item_id!r} does not exist", field="item_id",
                       accepted="an item of the demo catalogue")
    e = html.escape
    price = f"{item.price:.2f} {item.currency or ''}" if item.price is not None else ""
    body = (
        f'<article data-personify-view="{e(item.item_id)}"><h1>{e(item.title or item.item_id)}</h1>'
        f'<p>{e(item.description)}</p><p class="price">{e(price)}</p>'
        f'<button type="button" id="add" data-personify-track="add_to_cart" '
        f'data-personify-item="{e(item.item_id)}">Add to cart</button> '
        f'<button type="button" id="buy" data-personify-track="purchase" '
        f'data-personify-item="{e(item.item_id)}">Buy now</button></article>'
        '<section><h2>Similar items</h2><div id="similar" data-personify-widget="similar" '
        f'data-item="{e(item.item_id)}" data-n="4"></div></section>'
    )
    return _page(settings, item.title or item.item_id, body, product=item.item_id)


@router.get("/demo-shop/login", include_in_schema=False)
def demo_login(settings: SettingsDep) -> dict[str, Any]:
    """What a site's backend does at login: a person token for the signed-in user
    (docs/security.md), here for the demo shopper."""
    _demo_only(settings)
    master = settings.person_token_secret
    if master is None:
        raise Forbidden("person tokens are not enabled (PERSONIFY_PERSON_TOKEN_SECRET)",
                        field="person_token_secret", accepted="a secret of 24+ characters")
    secret = person_tokens.tenant_secret(master.get_secret_value().encode(),
                                         settings.default_tenant)
    token = person_tokens.issue(secret, DEMO_SHOPPER, expiry=int(time.time()) + 3600)
    return {"user_id": DEMO_SHOPPER, "person_token": token}


@router.get("/demo-shop/{name}", include_in_schema=False)
def demo_asset(name: str, settings: SettingsDep) -> Response:
    _demo_only(settings)
    types = {"shop.js": "application/javascript", "shop.css": "text/css"}
    if name not in types:
        raise NotFound(f"no demo shop file {name!r}", field="path", accepted="shop.js, shop.css")
    return Response(static_text(f"demo-shop/{name}"), media_type=f"{types[name]}; charset=utf-8")
