"""``run_evaluation``: load a dataset, fit and evaluate models next to the baselines, print a
Rich table and write a Markdown report with plots (what ``personify evaluate`` calls).

Output directory: ``results.json``, ``report.md``, ``metric_vs_k.png``,
``accuracy_vs_coverage.png``, ``cost.png``.
"""

from __future__ import annotations

import csv
import gc
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from personify.algorithms import create_model
from personify.algorithms.base import Recommender
from personify.data.diginetica import read_diginetica
from personify.data.gowalla import load_gowalla
from personify.data.interactions import Interactions
from personify.data.online_retail import online_retail_interactions
from personify.data.splits import Split, random_holdout, temporal_split
from personify.domain.errors import InvalidInput
from personify.evaluation._resources import peak_rss_mb, reset_peak
from personify.evaluation.protocol import evaluate, warm_and_cold
from personify.evaluation.tuning import SEARCH_SPACES, tune

DatasetLoader = Callable[[Path], Split]
ExtraEntries = Callable[[Split, int], Mapping[str, tuple[Recommender, dict[str, Any], float]]]
"""Given the split and the largest K: more entries to report, name -> (a fitted model or
``RankedLists``, its parameters, fit seconds) — e.g. the served configuration (``-m served``)."""


def _online_retail(folder: Path) -> Split:
    """Cleaned purchases, the last 30 days as test (the dataset README's protocol)."""
    data = online_retail_interactions(folder / "online_retail.csv.gz")
    return temporal_split(data, test_days=30, only_known_items=True)


def _diginetica(folder: Path) -> Split:
    """Sessions as users, 20 % of each session's views held out (a smoke protocol for the small
    sample; the session models' own next-item protocol is ``benchmarks/session.py``)."""
    return random_holdout(
        read_diginetica(folder / "sample_train-item-views.csv").to_interactions(), 0.2
    )


_DATASETS: dict[str, tuple[str, DatasetLoader]] = {
    "gowalla": ("gowalla_lightgcn", lambda p: Split(*load_gowalla(p))),
    "yelp2018": ("yelp2018_lightgcn", lambda p: Split(*load_gowalla(p))),
    "online_retail": ("online_retail_uci", _online_retail),
    "diginetica": ("diginetica_sample_srgnn", _diginetica),
}
BASELINES = ("popularity", "random")


def register_dataset(name: str, folder: str, loader: DatasetLoader) -> None:
    """Make ``run_evaluation(name, ...)`` load ``<datasets_dir>/<folder>`` with ``loader``."""
    _DATASETS[name] = (folder, loader)


def load_csv(path: Path) -> Interactions:
    """A CSV / TSV with a header: ``user_id``, ``item_id`` and optional ``weight``, ``timestamp``
    (epoch seconds) columns."""
    with open(path, newline="", encoding="utf-8") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        rows = list(csv.DictReader(fh, dialect=dialect))
    if not rows or not {"user_id", "item_id"} <= set(rows[0]):
        raise InvalidInput(
            f"{path} needs user_id and item_id columns",
            field="dataset",
            accepted="CSV with header user_id,item_id[,weight][,timestamp]",
        )
    weights = [float(r["weight"]) for r in rows] if "weight" in rows[0] else None
    times = [float(r["timestamp"]) for r in rows] if "timestamp" in rows[0] else None
    return Interactions.from_arrays(
        [r["user_id"] for r in rows], [r["item_id"] for r in rows], weights, times
    )


def load_dataset(dataset: str | Path, datasets_dir: Path | None = None) -> tuple[str, Split]:
    """Resolve a dataset name (``gowalla`` or a registered one), a LightGCN-format folder, or a
    CSV file into a train / test split (temporal when timestamps exist, else random)."""
    text = str(dataset)
    if text in _DATASETS:
        folder, loader = _DATASETS[text]
        base = datasets_dir or Path("../shared/datasets")
        return text, loader(base / folder)
    path = Path(text)
    if path.is_dir() and ((path / "train.txt").exists() or (path / "train.txt.gz").exists()):
        return path.name, Split(*load_gowalla(path))
    if path.is_file():
        data = load_csv(path)
        if data.timestamps is not None:
            return path.stem, temporal_split(
                data, float(np.quantile(data.timestamps, 0.8)), only_known_items=True
            )
        return path.stem, random_holdout(data, 0.2)
    raise InvalidInput(
        f"unknown dataset {text!r}",
        field="dataset",
        accepted=", ".join(sorted(_DATASETS)) + ", a LightGCN-format folder, or a CSV file",
    )


@dataclass
class EvaluationReport:
    dataset: str
    results: dict[str, dict[str, Any]]
    ks: list[int]
    out_dir: Path
    files: list[Path] = field(default_factory=list)


def run_evaluation(
    dataset: str | Path,
    models: Sequence[str] | Mapping[str, Mapping[str, Any]],
    out_dir: str | Path,
    *,
    ks: Sequence[int] = (5, 10, 20, 50),
    datasets_dir: str | Path | None = None,
    tune_seconds: float = 0.0,
    batch_size: int = 1024,
    console: Any | None = None,
    extra: ExtraEntries | None = None,
) -> EvaluationReport:
    """Evaluate ``models`` (names, or name -> parameters) with the baselines on ``dataset``.

    ``tune_seconds > 0`` first searches each model's parameters for that long on a validation
    split carved from train (never test). ``extra`` adds entries built on the split (the served
    configuration). Metrics are over the *warm* test users (with training history); people
    who appear only in the test period are scored apart (``cold_*`` keys) with a warning.
    Returns the results and writes the report files.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console()
    name, split = load_dataset(dataset, Path(datasets_dir) if datasets_dir else None)
    specs: dict[str, dict[str, Any]] = (
        {m: {} for m in models}
        if not isinstance(models, Mapping)
        else {m: dict(p) for m, p in models.items()}
    )
    for baseline in BASELINES:
        specs.setdefault(baseline, {})
    ks = sorted({int(k) for k in ks})
    results: dict[str, dict[str, Any]] = {}
    warm, cold = warm_and_cold(split.train, split.test)
    if cold.size:
        console.print(
            f"[yellow]warning[/yellow]: {cold.size:,} of {warm.size + cold.size:,} test users "
            "have no training history (they first appear in the test period); the metrics "
            "below are over the warm users, the cold ones are reported apart (cold_* columns)"
        )

    def measured(model: Recommender, advance: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = evaluate(model, split.train, split.test, ks, batch_size=batch_size,
                                       users=warm, progress=advance)
        out["cold_users"] = float(cold.size)
        if cold.size:
            gone = evaluate(model, split.train, split.test, ks, batch_size=batch_size,
                            users=cold)
            out.update({f"cold_{m}@{k}": gone[f"{m}@{k}"] for k in ks
                        for m in ("recall", "ndcg")})
        return out

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        for model_name, params in specs.items():
            label = model_name.split(":")[0]
            if tune_seconds > 0 and label in SEARCH_SPACES and label not in BASELINES:
                task = progress.add_task(f"tuning {model_name}", total=None)
                tuned = tune(
                    label,
                    split.train,
                    fixed=params,
                    time_budget_seconds=tune_seconds,
                    n_trials=1000,
                    batch_size=batch_size,
                )
                params = {**tuned.best_params, **params}
                progress.remove_task(task)
            gc.collect()
            reset_peak()
            start = time.perf_counter()
            model = create_model(label, **params).fit(split.train)
            fit_seconds = time.perf_counter() - start
            memory = peak_rss_mb()
            task = progress.add_task(f"evaluating {model_name}", total=1.0)

            def advance(done: int, total: int, task: Any = task) -> None:
                progress.update(task, completed=done / total)

            metrics = measured(model, advance)
            progress.remove_task(task)
            results[model_name] = {
                "params": params,
                "fit_seconds": fit_seconds,
                "peak_rss_mb": memory,
                **metrics,
            }
            del model
        if extra is not None:
            task = progress.add_task("the served configuration", total=None)
            for entry, (model, params, fit_seconds) in extra(split, ks[-1]).items():
                results[entry] = {"params": params, "fit_seconds": fit_seconds,
                                  "peak_rss_mb": peak_rss_mb(), **measured(model)}
            progress.remove_task(task)
    out = Path(out_dir)
    report = EvaluationReport(name, results, ks, out)
    console.print(results_table(report))
    write_report(report)
    return report


def results_table(report: EvaluationReport) -> Any:
    """A Rich table: one row per model, accuracy at the largest K and the cost columns."""
    from rich.table import Table

    k = report.ks[-1] if 20 not in report.ks else 20
    table = Table(title=f"{report.dataset}: full ranking, train items masked, warm users")
    columns = {f"recall@{k}": "recall", f"ndcg@{k}": "ndcg", f"coverage@{report.ks[-1]}": "cov",
               "fit_seconds": "fit s", "peak_rss_mb": "MB"}
    cold = any(row.get("cold_users", 0) for row in report.results.values())
    if cold:
        columns[f"cold_ndcg@{k}"] = "cold ndcg"
    table.add_column("model", overflow="fold", max_width=22)
    for header in columns.values():
        table.add_column(header, justify="right")
    for model_name, row in report.results.items():
        table.add_row(model_name, *(_cell(row.get(col, float("nan"))) for col in columns))
    table.caption = (f"@{k}; more columns in report.md" if not cold else
                     f"@{k}; cold = test users without training history")
    return table


def _cell(value: float) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:.4f}" if abs(value) < 1 else f"{value:.4g}"


def write_report(report: EvaluationReport) -> list[Path]:
    """Write results.json, the plots and report.md into ``report.out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = report.out_dir
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "results.json"]
    files[0].write_text(
        json.dumps(
            {"dataset": report.dataset, "ks": report.ks, "results": report.results},
            indent=2,
            default=str,
        )
        + "\n",
        encoding="utf-8",
    )
    kmax = report.ks[-1]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for model_name, row in report.results.items():
        for ax, metric in zip(axes, ("recall", "ndcg"), strict=True):
            ax.plot(
                report.ks, [row[f"{metric}@{k}"] for k in report.ks], marker="o", label=model_name
            )
            ax.set_xlabel("K")
            ax.set_ylabel(f"{metric}@K")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    files.append(out / "metric_vs_k.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 4))
    for model_name, row in report.results.items():
        ax.scatter(row[f"coverage@{kmax}"], row[f"ndcg@{kmax}"])
        ax.annotate(model_name, (row[f"coverage@{kmax}"], row[f"ndcg@{kmax}"]), fontsize=7)
    ax.set_xlabel(f"catalogue coverage@{kmax}")
    ax.set_ylabel(f"ndcg@{kmax}")
    fig.tight_layout()
    files.append(out / "accuracy_vs_coverage.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    names = list(report.results)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].barh(names, [report.results[n]["fit_seconds"] for n in names])
    axes[0].set_xlabel("fit seconds")
    axes[1].barh(names, [report.results[n]["peak_rss_mb"] for n in names])
    axes[1].set_xlabel("peak RSS (MB, process high-water mark)")
    fig.tight_layout()
    files.append(out / "cost.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    files.append(out / "report.md")
    files[-1].write_text(markdown(report), encoding="utf-8")
    report.files = files
    return files


def markdown(report: EvaluationReport) -> str:
    """The Markdown report body: protocol, a results table and the plots."""
    k = 20 if 20 in report.ks else report.ks[-1]
    kmax = report.ks[-1]
    cols = [
        f"recall@{k}",
        f"ndcg@{k}",
        f"precision@{k}",
        f"map@{k}",
        f"mrr@{k}",
        f"hit_rate@{k}",
        f"coverage@{kmax}",
        f"gini@{kmax}",
        f"novelty@{kmax}",
        f"arp@{kmax}",
        "fit_seconds",
        "peak_rss_mb",
        "users_per_second",
    ]
    if any(row.get("cold_users", 0) for row in report.results.values()):
        cols += ["cold_users", f"cold_recall@{k}", f"cold_ndcg@{k}"]
    lines = [
        f"# Offline evaluation: {report.dataset}",
        "",
        f"Generated {datetime.now(UTC).isoformat(timespec='seconds')}. Full ranking over all "
        "items, each user's training items masked, every user with test items and training "
        "history (test users without any are in the cold_* columns); beyond-accuracy "
        f"metrics at K = {kmax}. Baselines: popularity and random.",
        "",
        "| model | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for model_name, row in report.results.items():
        lines.append(
            f"| {model_name} | "
            + " | ".join(f"{row.get(c, float('nan')):.4g}" for c in cols)
            + " |"
        )
    lines += [
        "",
        "![metric vs K](metric_vs_k.png)",
        "",
        "![accuracy vs coverage](accuracy_vs_coverage.png)",
        "",
        "![fit time and memory](cost.png)",
        "",
        "## Parameters",
        "",
    ]
    for model_name, row in report.results.items():
        lines.append(f"- **{model_name}**: `{json.dumps(row['params'], default=str)}`")
    return "\n".join(lines) + "\n"
