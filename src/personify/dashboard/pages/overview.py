"""Overview: volumes, active users, recommendation requests, KPI trends, model and coverage.

The page itself reads only counts and the model; the aggregates load in a panel (htmx) so the
page answers at once even while the statistics are first built.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from personify.dashboard.model_info import served_model
from personify.dashboard.overview_figures import overview_figures
from personify.dashboard.pages.common import page_router, tenant
from personify.dashboard.rendering import render, translator
from personify.dashboard.state import dashboard, engine, stores

router = page_router()


@router.get("")
def root() -> Response:
    return RedirectResponse("/dashboard/", status_code=307)


@router.get("/")
def overview(request: Request) -> Response:
    who = tenant(request)
    st = stores(request)
    eng = engine(request)
    dashboard(request).stats.get(who)  # start building the aggregates early
    return render(
        request,
        "overview.html",
        section="overview",
        users=st.users.count(who),
        items=st.catalog.count(who),
        events=st.events.count(who),
        model=served_model(eng, who),
        warnings=list(eng.warnings) if eng is not None else [],
    )


@router.get("/panels/overview")
async def overview_panel(request: Request) -> Response:
    """The aggregates, or a "still computing" fragment that asks again in a second."""
    who = tenant(request)
    state = dashboard(request)
    t = translator(request)
    figures = await run_in_threadpool(state.stats.read, who, lambda s: overview_figures(s, t))
    if figures is None:
        return render(request, "panels/pending.html", url=request.url.path,
                      error=state.stats.error(who))
    st = stores(request)
    model = served_model(engine(request), who)
    return render(
        request,
        "panels/overview.html",
        f=figures,
        catalogue=st.catalog.count(who),
        model_items=model.items if model is not None else 0,
    )
