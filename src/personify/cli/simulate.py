"""``personify simulate``: the closed-loop simulator (A/A false-positive rate, power at a planted
lift, personalized vs popularity, bandit regret) on a population fitted to Online Retail, or on a
synthetic population when no dataset is given."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from personify.domain.errors import NotFound
from personify.experiments.simulation import SimulationConfig, simulate, synthetic_world

console = Console(soft_wrap=True)

HEADLINE = (
    ("aa_false_positive_rate", "A/A false-positive rate (alpha 0.05)"),
    ("planted_lift_power", "power at the planted lift"),
    ("planted_lift_stated_power", "stated power"),
    ("ctr_lift", "CTR lift, personalized vs popularity"),
    ("ctr_lift_ci_low", "  CI low"),
    ("ctr_lift_ci_high", "  CI high"),
    ("conversion_lift", "conversion lift"),
    ("conversion_lift_ci_low", "  CI low"),
    ("conversion_lift_ci_high", "  CI high"),
    ("bandit_regret_ratio", "bandit regret / uniform regret"),
)


def register(app: typer.Typer) -> None:
    """Add ``simulate`` as a top-level command."""
    app.command("simulate")(simulate_command)


def simulate_command(
    dataset: Annotated[
        Path | None,
        typer.Option(help="Online Retail CSV (.csv or .csv.gz); synthetic population if omitted."),
    ] = None,
    runs: Annotated[int, typer.Option(help="A/A and planted-lift runs each.", min=2)] = 200,
    units: Annotated[
        int, typer.Option(help="Visitors per A/A test.", min=100)
    ] = 2000,
    compare_units: Annotated[
        int, typer.Option(help="Visitors in the personalized vs popularity test.", min=200)
    ] = 20000,
    bandit_rounds: Annotated[int, typer.Option(help="Rounds of the bandit study.", min=10)] = 3000,
    planted_lift: Annotated[float, typer.Option(help="Relative CTR lift planted.", min=0.01)] = 0.1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Also write the metrics as JSON.")] = None,
) -> None:
    """Run the simulator's studies and print their metrics."""
    if dataset is not None and not dataset.is_file():
        raise NotFound(f"no file {dataset}", field="dataset",
                       accepted="the Online Retail CSV (.csv or .csv.gz)")
    config = SimulationConfig(
        dataset=dataset,
        seed=seed,
        aa_runs=runs,
        aa_units=units,
        power_runs=runs,
        planted_lift=planted_lift,
        compare_units=compare_units,
        bandit_rounds=bandit_rounds,
    )
    world = None if dataset is not None else synthetic_world(seed=seed)
    with console.status("simulating ..."):
        metrics = simulate(config, world=world)
    console.print(metrics_table(metrics, "Online Retail" if dataset else "synthetic"))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(metrics, indent=2, default=float), encoding="utf-8")
        console.print(f"wrote {out}")


def metrics_table(metrics: dict[str, Any], population: str) -> Table:
    """The headline metrics first, then the rest."""
    table = Table("metric", "value", title=f"simulation on a {population} population "
                  f"({metrics.get('n_users')} users, {metrics.get('n_items')} items)")
    shown = set()
    for key, label in HEADLINE:
        if key in metrics:
            table.add_row(label, _fmt(metrics[key]))
            shown.add(key)
    for key in sorted(set(metrics) - shown):
        table.add_row(key, _fmt(metrics[key]))
    return table


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)
