"""Items: browse and search the catalogue by type; an item's similar items and performance."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from personify.dashboard.charts import Chart, Series
from personify.dashboard.pages.common import page_router, tenant
from personify.dashboard.rendering import language, render, translator
from personify.dashboard.state import dashboard, engine, stores
from personify.dashboard.stats import ItemTotals, TenantStats
from personify.domain.items import ItemType

router = page_router()
PAGE_SIZE = 50


def _performance(stats: TenantStats | None, ids: list[str]) -> dict[str, ItemTotals]:
    if stats is None:
        return {}
    return {i: stats.items[i] for i in ids if i in stats.items}


@router.get("/items")
def item_list(
    request: Request,
    type: Annotated[str, Query(max_length=64)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    who = tenant(request)
    found = stores(request).catalog.list(
        who, type=type or None, query=q or None, limit=PAGE_SIZE + 1, offset=offset
    )
    page = found[:PAGE_SIZE]
    ids = [i.item_id for i in page]
    performance = dashboard(request).stats.read(who, lambda s: _performance(s, ids))
    return render(
        request, "items.html", section="items", items=page, type=type, q=q, offset=offset,
        more=len(found) > PAGE_SIZE, page_size=PAGE_SIZE, types=[t.value for t in ItemType],
        performance=performance or {}, stats_ready=performance is not None,
    )


@router.get("/items/{item_id}")
def item_detail(request: Request, item_id: str) -> Response:
    who = tenant(request)
    item = stores(request).catalog.get(who, item_id)
    totals = dashboard(request).stats.read(who, lambda s: _performance(s, [item_id]))
    perf = totals.get(item_id, ItemTotals()) if isinstance(totals, dict) else None
    t = translator(request)
    chart = None
    if perf is not None:
        labels = [t("views"), t("clicks"), t("add_to_cart"), t("purchases"), t("shown"),
                  t("recommended_clicks")]
        values = [perf.views, perf.clicks, perf.add_to_cart, perf.purchases, perf.shown,
                  perf.recommended_clicks]
        chart = Chart("item-performance", t("item_performance"), labels,
                      [Series(t("events"), [float(v) for v in values])], kind="bars")
    return render(request, "item.html", section="items", item_id=item_id, item=item, perf=perf,
                  chart=chart, status_code=200 if item is not None else 404)


@router.get("/items/{item_id}/similar")
async def similar_items(request: Request, item_id: str) -> Response:
    eng = engine(request)
    if eng is None:
        return render(request, "panels/not_configured.html", what="engine")
    lang = language(request)
    result = await run_in_threadpool(
        eng.service.similar, tenant(request), item_id, 10, explain=True, language=lang
    )
    return render(request, "panels/similar.html", result=result)
