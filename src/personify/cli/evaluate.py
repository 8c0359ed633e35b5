"""``personify evaluate``: offline evaluation of models on a shared dataset, a LightGCN-format
folder or your own CSV of interactions — full-ranking metrics next to popularity and random
baselines, a Rich table, and a Markdown report with plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from personify.evaluation.report import run_evaluation

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
            "--model", "-m", help="Model to evaluate (repeat); default rp3beta, itemknn, als."
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
) -> None:
    """Evaluate models with full ranking; test data is never used to choose anything."""
    report = run_evaluation(
        dataset,
        model or ["rp3beta", "itemknn", "als"],
        out,
        ks=tuple(k or (10, 20)),
        datasets_dir=datasets_dir,
        tune_seconds=tune_seconds,
        console=console,
    )
    console.print(f"[green]report[/green] written to {report.out_dir}")


def register(root: typer.Typer) -> None:
    root.command("evaluate")(evaluate)
