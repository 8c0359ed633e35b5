"""Experiments: create, start, stop; results with intervals, lift and verdict."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from personify.dashboard.experiment_forms import (
    METRIC_KINDS,
    definition_from_form,
    forest,
    result_rows,
)
from personify.dashboard.pages.common import form_lists, form_values, page_router, tenant
from personify.dashboard.rendering import render
from personify.dashboard.state import dashboard, stores
from personify.domain.errors import PersonifyError
from personify.experiments.service import (
    create_experiment,
    experiment_report,
    get_experiment,
    start_experiment,
    stop_experiment,
)

router = page_router()
COVARIATE_WINDOW = timedelta(days=28)
"""How far before the start the results read events (pre-period for CUPED)."""


def _list(request: Request, *, error: str = "", form: dict[str, str] | None = None,
          status_code: int = 200) -> Response:
    state = dashboard(request)
    return render(
        request, "experiments.html", section="experiments",
        experiments=state.experiments.list(tenant(request)), in_memory=state.experiments_in_memory,
        metrics=list(METRIC_KINDS), error=error, form=form or {}, status_code=status_code,
    )


@router.get("/experiments")
def experiments_page(request: Request) -> Response:
    return _list(request)


@router.post("/experiments")
async def create(request: Request) -> Response:
    form = await form_values(request)
    guardrails = await form_lists(request, "guardrails")
    try:
        definition = definition_from_form(form, guardrails)
        exp = create_experiment(dashboard(request).experiments, tenant(request), definition)
    except PersonifyError as exc:
        return _list(request, error=exc.message, form=form, status_code=400)
    return RedirectResponse(f"/dashboard/experiments/{exp.name}", status_code=303)


def _detail(request: Request, name: str, *, error: str = "", status_code: int = 200) -> Response:
    try:
        exp = get_experiment(dashboard(request).experiments, tenant(request), name)
    except PersonifyError:
        return render(request, "experiment_missing.html", section="experiments", name=name,
                      status_code=404)
    return render(request, "experiment.html", section="experiments", exp=exp, error=error,
                  status_code=status_code)


@router.get("/experiments/{name}")
def experiment_page(request: Request, name: str) -> Response:
    return _detail(request, name)


@router.post("/experiments/{name}/start")
def start(request: Request, name: str) -> Response:
    try:
        start_experiment(dashboard(request).experiments, tenant(request), name)
    except PersonifyError as exc:
        return _detail(request, name, error=exc.message, status_code=409)
    return RedirectResponse(f"/dashboard/experiments/{name}", status_code=303)


@router.post("/experiments/{name}/stop")
def stop(request: Request, name: str) -> Response:
    try:
        stop_experiment(dashboard(request).experiments, tenant(request), name)
    except PersonifyError as exc:
        return _detail(request, name, error=exc.message, status_code=409)
    return RedirectResponse(f"/dashboard/experiments/{name}", status_code=303)


def _results(request: Request, name: str) -> Response:
    state = dashboard(request)
    who = tenant(request)
    exp = get_experiment(state.experiments, who, name)
    exposures = state.exposures.exposures(who, name)
    if not exposures:
        return render(request, "panels/experiment_results.html", exp=exp, result=None, rows=[],
                      error="")
    since = min(e.timestamp for e in exposures) - COVARIATE_WINDOW
    events = stores(request).events.scan(who, since=since)
    try:
        result, _ = experiment_report(state.experiments, state.exposures, who, name, events)
    except PersonifyError as exc:
        return render(request, "panels/experiment_results.html", exp=exp, result=None, rows=[],
                      error=exc.message)
    rows = result_rows(result)
    plot, zero, half = forest(rows)
    return render(request, "panels/experiment_results.html", exp=exp, result=result, rows=rows,
                  plot=plot, zero=zero, half=half, error="")


@router.get("/panels/experiments/{name}")
async def results_panel(request: Request, name: str) -> Response:
    return await run_in_threadpool(_results, request, name)
