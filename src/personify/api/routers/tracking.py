"""Public tracking endpoints (no API key: the signed token is the credential).

- ``GET /t/o/{token}``: the open pixel, a 1x1 GIF; a valid token becomes an ``email_open`` event.
- ``GET /t/c/{token}``: a click becomes an ``email_click`` event and redirects to the URL stored
  for that message and link only (never to a URL carried by the request: no open redirect).
- ``GET /u/{token}``: a page with an unsubscribe button (a GET never unsubscribes: mail
  scanners prefetch links); ``POST /u/{token}``: unsubscribes at once, which is also the
  RFC 8058 one-click request mail clients send (``List-Unsubscribe=One-Click``).
"""

from __future__ import annotations

import base64
import html
import logging
from typing import Annotated

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from personify.api.deps import MessagingDep
from personify.api.routing import KeyFirstRoute
from personify.domain.errors import PersonifyError

log = logging.getLogger(__name__)
router = APIRouter(tags=["tracking"], route_class=KeyFirstRoute)

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
"""A transparent 1x1 GIF."""
NO_STORE = {"Cache-Control": "no-store, max-age=0", "Referrer-Policy": "no-referrer"}
Token = Annotated[str, Path(min_length=8, max_length=2048)]


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head>"
        "<body style='font-family:sans-serif;max-width:32em;margin:4em auto'>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=NO_STORE)


@router.get(
    "/t/o/{token}", summary="Open pixel (1x1 GIF)", response_class=Response,
    responses={200: {"content": {"image/gif": {}}, "description": "a 1x1 GIF"}},
)
async def open_pixel(token: Token, messaging: MessagingDep) -> Response:
    """Always answers with the GIF (a broken image helps nobody); only a valid token counts."""
    try:
        await run_in_threadpool(messaging.tracking.open, token)
    except PersonifyError as exc:
        log.info("open pixel with a bad token: %s", exc.message)
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get(
    "/t/c/{token}", summary="Tracked click: redirect to the stored URL", response_class=Response,
    responses={302: {"description": "redirect to the stored URL"}},
)
async def click(token: Token, messaging: MessagingDep) -> Response:
    """401 for a tampered token, 404 for an unknown link, else 302 to the stored URL."""
    result = await run_in_threadpool(messaging.tracking.click, token)
    return RedirectResponse(result.redirect_url, status_code=302, headers=NO_STORE)


@router.get(
    "/u/{token}", summary="Unsubscribe page (confirm with a POST)", response_class=HTMLResponse,
    responses={400: {"content": {"text/html": {}}, "description": "the link is not valid"}},
)
def unsubscribe_page(token: Token, messaging: MessagingDep) -> HTMLResponse:
    """Checks the token but changes nothing: the button POSTs back to this URL."""
    try:
        _, _, _, channel = messaging.signer.verify(token, "u")
    except PersonifyError:
        return _page("Invalid link", "<p>This unsubscribe link is not valid.</p>", 400)
    what = "these messages" if channel == "*" else f"{html.escape(str(channel))} messages"
    form = (
        f"<p>Stop receiving {what}?</p>"
        "<form method='post' action=''>"
        "<input type='hidden' name='List-Unsubscribe' value='One-Click'>"
        "<button type='submit'>Unsubscribe</button></form>"
    )
    return _page("Unsubscribe", form)


@router.post(
    "/u/{token}", summary="Unsubscribe now (RFC 8058 one-click)", response_class=HTMLResponse,
    responses={400: {"content": {"text/html": {}}, "description": "the link is not valid"}},
)
def unsubscribe(token: Token, messaging: MessagingDep) -> HTMLResponse:
    """Effective for the very next send: the worker checks unsubscribes at send time."""
    try:
        messaging.tracking.unsubscribe(token)
    except PersonifyError:
        return _page("Invalid link", "<p>This unsubscribe link is not valid.</p>", 400)
    return _page("Unsubscribed", "<p>You will not receive these messages any more.</p>")
