"""``/v1/pages``: personalized pages of rows. ``GET /v1/pages/{name}`` (``serve``) answers a
page for one person; the definitions (``admin``) are stored per tenant; ``home`` exists without
one. See :mod:`personify.runtime.pages` for how rows are built and ordered."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from personify.api.deps import AdminKey, RuntimeDep, ServeAccess
from personify.api.responses import JSONBody
from personify.api.routers.recommendations import RecommendedItemOut, items_json
from personify.api.routing import KeyFirstRoute
from personify.domain._fields import Identifier, Name, ShortText
from personify.domain.errors import InvalidInput, NotFound
from personify.domain.events import Context, Location
from personify.runtime.pages import DEFAULT_PAGE, MAX_ROWS, Impressions, Page, PageDefinition

router = APIRouter(prefix="/v1/pages", tags=["pages"], route_class=KeyFirstRoute)


class RowOut(BaseModel):
    row_id: str
    kind: str
    title: str = Field(description="in the page's language")
    reason: str = Field(description="why this row, in the page's language")
    recommendation_id: str = Field(
        description="quote it on clicks of the row's items, with properties.page_id and "
        "properties.row_id, so the row order learns"
    )
    position: int
    propensity: float = Field(description="probability the row policy placed it here")
    sources: list[str]
    items: list[RecommendedItemOut]


class PageOut(BaseModel):
    page: str
    page_id: str = Field(description="the row decision's id: properties.page_id on clicks")
    policy: str
    language: str
    personalized: bool
    warnings: list[str] = Field(default_factory=list)
    rows: list[RowOut]


class PageDefinitionOut(BaseModel):
    name: str
    stored: bool = Field(description="false for the built-in default home page")
    definition: PageDefinition


class PageNamesOut(BaseModel):
    pages: list[str]


def page_json(page: Page, runtime: Any, tenant: str, *, include_items: bool) -> dict[str, Any]:
    catalog = runtime.engine.catalogs.get(tenant)
    return {
        "page": page.name,
        "page_id": page.page_id,
        "policy": page.policy,
        "language": page.language,
        "personalized": page.personalized,
        "warnings": page.warnings,
        "rows": [
            {
                "row_id": r.row_id,
                "kind": r.kind,
                "title": r.title,
                "reason": r.reason,
                "recommendation_id": r.recommendation_id,
                "position": r.position,
                "propensity": r.propensity,
                "sources": r.sources,
                "items": items_json(r.items, catalog, include_items=include_items),
            }
            for r in page.rows
        ],
    }


@router.get("", response_model=PageNamesOut, summary="The tenant's pages")
def list_pages(key: AdminKey, runtime: RuntimeDep) -> PageNamesOut:
    return PageNamesOut(pages=runtime.pages.names(key.tenant))


@router.get("/{name}", response_model=PageOut, summary="A personalized page of rows")
async def get_page(
    name: Name,
    access: ServeAccess,
    runtime: RuntimeDep,
    user_id: Identifier | None = None,
    anonymous_id: Identifier | None = None,
    language: Literal["en", "ru"] | None = None,
    rows: Annotated[list[Name] | None, Query(max_length=MAX_ROWS)] = None,
    country: ShortText | None = None,
    city: ShortText | None = None,
    device: ShortText | None = None,
    channel: Name | None = None,
    locale: ShortText | None = None,
    explain: bool = True,
    include_items: bool = True,
    impressions: Annotated[Impressions | None, Query(
        description="served: every row answered is logged as an impression and counts as "
        "seen by the row policy (server keys' default); reported: nothing is logged now, the "
        "caller sends an impression event with properties.page_id / row_id for each row that "
        "comes into view, and only those rows count (browser keys always)")] = None,
) -> JSONBody:
    """Rows for the person (``user_id`` or ``anonymous_id``; neither: the non-personal rows),
    ordered by the page's row policy, titled in ``language`` (else the person's profile
    language, else ``locale``, else English). With ``impressions=served`` (the default) each
    row is logged as an impression. A browser key asks for its own visitor only (the ids
    default to the visitor's) and its rows are ``reported``: the snippet reports the rows
    that were actually seen; rows never seen neither reward nor penalise the row order."""
    if user_id is not None and anonymous_id is not None:
        raise InvalidInput("give user_id or anonymous_id, not both", field="anonymous_id")
    visitor = access.visitor
    if visitor is not None and impressions == "served":
        raise InvalidInput("a browser key reports the rows that were seen",
                           field="impressions", accepted="reported")
    mode: Impressions = impressions or ("served" if visitor is None else "reported")
    if visitor is not None:
        if user_id is None and anonymous_id is None:
            user_id = visitor.user_id
            anonymous_id = None if user_id else visitor.anonymous_id
        access.check(user_id, anonymous_id)
    tenant = access.tenant
    location = Location(country=country, city=city) if country or city else None
    context = Context(location=location, device=device, channel=channel, locale=locale)

    def work() -> JSONBody:
        page = runtime.pages.render(
            tenant, name, user_id=user_id, anonymous_id=anonymous_id, language=language,
            context=context, rows=rows, explain=explain, impressions=mode,
        )
        return JSONBody(page_json(page, runtime, tenant, include_items=include_items))

    # the row decision is logged in the database: off the event loop
    return await run_in_threadpool(work)


@router.get("/{name}/definition", response_model=PageDefinitionOut,
            summary="A page's definition (the default for home when none is stored)")
def get_definition(name: Name, key: AdminKey, runtime: RuntimeDep) -> PageDefinitionOut:
    page = runtime.pages.definition(key.tenant, name)
    return PageDefinitionOut(name=name, stored=runtime.pages.is_defined(key.tenant, name),
                             definition=page)


@router.put("/{name}/definition", response_model=PageDefinitionOut,
            summary="Create or replace a page (its row order starts learning afresh)")
def put_definition(
    name: Name, body: PageDefinition, key: AdminKey, runtime: RuntimeDep
) -> PageDefinitionOut:
    page = runtime.pages.put(key.tenant, name, body)
    return PageDefinitionOut(name=name, stored=True, definition=page)


@router.delete("/{name}/definition", summary="Delete a page (home returns to the default)")
def delete_definition(name: Name, key: AdminKey, runtime: RuntimeDep) -> dict[str, Any]:
    if not runtime.pages.delete(key.tenant, name):
        accepted = ", ".join(p for p in runtime.pages.names(key.tenant) if p != DEFAULT_PAGE)
        raise NotFound(f"no stored page {name!r}", field="name", accepted=accepted or "none")
    return {"deleted": name}
