"""Experiment reports: a Markdown summary and a PNG forest plot of relative lifts."""

from __future__ import annotations

import math
from pathlib import Path

from personify.experiments.analysis import ExperimentResult


def _fmt(x: float, pct: bool = False) -> str:
    if math.isnan(x):
        return "n/a"
    return f"{100 * x:.2f} %" if pct else f"{x:.4g}"


def render_markdown(result: ExperimentResult, plot_name: str | None = None) -> str:
    """The report as Markdown: verdict, units, SRM and one table row per comparison."""
    lines = [
        f"# Experiment `{result.experiment}`",
        "",
        f"**Verdict:** {result.verdict}",
        "",
        f"Horizon: {result.horizon_note}.",
        "",
        "Units per variant: "
        + ", ".join(f"{k} {v}" for k, v in result.units.items())
        + f" (SRM chi-square p = {result.srm.p_value:.3g}).",
        "",
        "| metric | variant | control value | variant value | lift | lift CI | p (Holm) | method |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in result.comparisons:
        p = c.p_adjusted if c.p_adjusted is not None else c.p_value
        lines.append(
            f"| {c.metric} | {c.variant} | {_fmt(c.control_value)} | {_fmt(c.variant_value)} "
            f"| {_fmt(c.lift, True)} | {_fmt(c.lift_ci[0], True)} .. {_fmt(c.lift_ci[1], True)} "
            f"| {p:.3g} | {c.method} |"
        )
    if result.notes:
        lines += ["", *(f"- {n}" for n in result.notes)]
    if plot_name:
        lines += ["", f"![relative lifts]({plot_name})"]
    return "\n".join(lines) + "\n"


def write_report(result: ExperimentResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``<name>.md`` and ``<name>_lifts.png`` into ``out_dir``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{result.experiment}_lifts.png"
    rows = result.comparisons
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.5 * max(1, len(rows))))
    for i, c in enumerate(rows):
        lo, hi = c.lift_ci
        y = len(rows) - 1 - i
        if not (math.isnan(lo) or math.isnan(hi)):
            ax.plot([100 * lo, 100 * hi], [y, y], color="tab:blue", linewidth=2)
        if not math.isnan(c.lift):
            ax.plot(100 * c.lift, y, "o", color="tab:red" if c.diff < 0 else "tab:green")
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{c.metric}: {c.variant}" for c in reversed(rows)])
    ax.set_xlabel(f"relative lift vs {result.control} (%), {round(100 * (1 - result.alpha))} % CI")
    ax.set_title(f"Experiment {result.experiment}")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    md = out / f"{result.experiment}.md"
    md.write_text(render_markdown(result, png.name), encoding="utf-8")
    return {"markdown": md, "plot": png}
