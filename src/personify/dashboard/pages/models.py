"""Models: training runs with their metrics, promote / rollback, offline evaluation results."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from personify.dashboard.charts import Chart, Series
from personify.dashboard.evaluation_results import ResultFile, read_results
from personify.dashboard.model_info import (
    parse_time,
    scalar_metrics,
    selection_rows,
    served_model,
)
from personify.dashboard.pages.common import page_router, tenant
from personify.dashboard.rendering import render
from personify.dashboard.state import dashboard, engine
from personify.domain.errors import NotFound, PersonifyError
from personify.runtime.engine import Engine

router = page_router()


def _page(
    request: Request, *, flash: str = "", error: str = "", status_code: int = 200
) -> Response:
    eng = engine(request)
    who = tenant(request)
    runs = list(reversed(eng.models.list(who))) if eng is not None else []
    return render(
        request,
        "models.html",
        section="models",
        runs=[(m, parse_time(m.created_at), scalar_metrics(m)) for m in runs],
        selections={m.version: selection_rows(m) for m in runs},
        served=served_model(eng, who),
        flash=flash,
        error=error,
        status_code=status_code,
    )


@router.get("/models")
def models_page(request: Request) -> Response:
    return _page(request)


def _refresh(eng: Engine) -> None:
    """Swap the newly promoted bundle in now instead of at the registry's next poll."""
    refresh = getattr(eng.bundles, "refresh", None)
    if callable(refresh):
        refresh()


@router.post("/models/{version}/promote")
async def promote(request: Request, version: str) -> Response:
    eng = engine(request)
    if eng is None:
        return _page(request, error="not_configured_engine", status_code=409)
    try:
        await run_in_threadpool(eng.models.promote, tenant(request), version)
    except PersonifyError as exc:  # unknown version, or refused: an erasure came after it
        return _page(request, error=exc.message,
                     status_code=404 if isinstance(exc, NotFound) else 409)
    await run_in_threadpool(_refresh, eng)
    return _page(request, flash=f"promoted:{version}")


@router.post("/models/rollback")
async def rollback(request: Request) -> Response:
    eng = engine(request)
    if eng is None:
        return _page(request, error="not_configured_engine", status_code=409)
    try:
        version = await run_in_threadpool(eng.models.rollback, tenant(request))
    except PersonifyError as exc:
        return _page(request, error=exc.message, status_code=409)
    await run_in_threadpool(_refresh, eng)
    return _page(request, flash=f"rolled_back:{version}")


def evaluation_charts(files: list[ResultFile]) -> list[tuple[ResultFile, list[Chart]]]:
    """One bar chart per results table: its first metric across the rows."""
    out = []
    for number, f in enumerate(files):
        charts = []
        for k, table in enumerate(f.tables):
            if not table.columns:
                continue
            metric = table.columns[0]
            charts.append(
                Chart(
                    f"eval-{number}-{k}",
                    f"{f.name}{' / ' + table.title if table.title else ''}: {metric}",
                    [name for name, _ in table.rows],
                    [Series(metric, [values[0] for _, values in table.rows])],
                    kind="bars",
                )
            )
        out.append((f, charts))
    return out


@router.get("/panels/evaluation")
async def evaluation_panel(request: Request) -> Response:
    files = await run_in_threadpool(read_results, dashboard(request).results_dir)
    return render(request, "panels/evaluation.html", results=evaluation_charts(files),
                  folder=str(dashboard(request).results_dir))
