"""Pages of rows: a page as a chosen person would see it ("view as"): its rows in the order
the page's row policy currently expects the most of for them, each titled in their language,
with its reason and items. A preview logs nothing (no impression, no row decision)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import Response

from personify.dashboard.pages.common import page_router, tenant
from personify.dashboard.rendering import render
from personify.dashboard.state import runtime
from personify.domain.errors import PersonifyError
from personify.domain.events import Context, Location
from personify.runtime.pages import Page

router = page_router()


@router.get("/pages")
def pages_view_as(
    request: Request,
    page: Annotated[str, Query(max_length=200)] = "home",
    user_id: Annotated[str, Query(max_length=200)] = "",
    language: Annotated[str, Query(max_length=5)] = "",
    country: Annotated[str, Query(max_length=100)] = "",
    city: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    who = tenant(request)
    pages = runtime(request).pages
    names = pages.names(who)
    preview: Page | None = None
    error = ""
    status = 200
    location = Location(country=country or None, city=city or None) if country or city else None
    try:
        preview = pages.render(
            who, page, user_id=user_id or None,
            language=language if language in ("en", "ru") else None,
            context=Context(location=location), log=False,
        )
    except PersonifyError as exc:
        error, status = exc.message, 404
    return render(
        request, "pages.html", section="pages", names=names, page=page, user_id=user_id,
        language=language, country=country, city=city, preview=preview, error=error,
        status_code=status,
    )
