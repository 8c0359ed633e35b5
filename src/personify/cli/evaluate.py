"""``personify evaluate``: offline evaluation of models on a shared dataset, a LightGCN-format
folder or your own CSV of interactions — full-ranking metrics next to popularity and random
baselines, a Rich table, and a Markdown report with plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from personify.evaluation.report import run_evaluation
from personify.jobs.served_evaluation import served_entries

console = Console(soft_wrap=True)


def evaluate(
    dataset: Annotated[
        str,
        typer.Argument(
            help="gowalla, online_retail, diginetica, a LightGCN-format folder, or a "
            "CSV with user_id,item_id[,weight][,timestamp]."
        ),
    ],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", help="Model to evaluate (repeat); 'served' = the configuration "
            "`personify train` would choose and tune on the training part, answered by the "
            "serving chain, next to each candidate at its tuned parameters; default served."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for results.json, report.md and plots.")] = (
        Path("reports/evaluation")
    ),
    k: Annotated[list[int] | None, typer.Option("--k", help="Cut-offs (repeat).")] = None,
    datasets_dir: Annotated[
        Path | None,
        typer.Option(help="Where the shared datasets live (default ../shared/datasets)."),
    ] = None,
    tune_seconds: Annotated[
        float, typer.Option(help="Optuna search per model on a validation split carved from train.")
    ] = 0.0,
    budget: Annotated[
        float | None,
        typer.Option(help="Seconds for the served configuration's selection (default scaled "
                     "to the data, as `personify train`)."),
    ] = None,
) -> None:
    """Evaluate models with full ranking; test data is never used to choose anything."""
    chosen = list(model or ["served"])
    extra = None
    if "served" in chosen:
        chosen.remove("served")
        extra = served_entries(budget)
    report = run_evaluation(
        dataset,
        chosen,
        out,
        ks=tuple(k or (10, 20)),
        datasets_dir=datasets_dir,
        tune_seconds=tune_seconds,
        console=console,
        extra=extra,
    )
    served = report.results.get("served")
    if served is not None:
        params = served["params"]
        console.print(f"served: {params.get('chosen')} ({params.get('validation')} validation), "
                      f"neighbours {params.get('neighbours')}, blend {params.get('blend_weights')}")
    console.print(f"[green]report[/green] written to {report.out_dir}")


def register(root: typer.Typer) -> None:
    root.command("evaluate")(evaluate)
