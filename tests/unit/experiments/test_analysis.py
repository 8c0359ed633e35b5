from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from personify.experiments.analysis import MetricSamples, analyze
from personify.experiments.definitions import Experiment
from personify.experiments.report import write_report


def experiment(**kw: object) -> Experiment:
    body: dict[str, object] = {
        "name": "exp",
        "variants": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
        "primary_metric": {"name": "conversion", "kind": "proportion"},
        "guardrail_metrics": [{"name": "revenue", "kind": "mean"}],
        "planned_sample_size": 4000,
    }
    body.update(kw)
    return Experiment.model_validate(body)


def data(
    rates: dict[str, float], n: int = 5000, seed: int = 0
) -> dict[str, dict[str, MetricSamples]]:
    rng = np.random.default_rng(seed)
    out = {}
    for v, p in rates.items():
        conv = (rng.random(n) < p).astype(float)
        out[v] = {
            "conversion": MetricSamples(conv),
            "revenue": MetricSamples(conv * rng.lognormal(3, 1, n)),
        }
    return out


def test_detects_real_effect_and_writes_verdict() -> None:
    result = analyze(experiment(), data({"A": 0.10, "B": 0.13, "C": 0.10}), n_bootstrap=200)
    assert result.final
    b = next(c for c in result.for_metric("conversion") if c.variant == "B")
    c = next(c for c in result.for_metric("conversion") if c.variant == "C")
    assert b.significant(result.alpha) and not c.significant(result.alpha)
    assert b.p_adjusted is not None and b.p_adjusted >= b.p_value
    assert result.verdict.startswith("B increases conversion by")
    assert "C shows no significant change" in result.verdict
    assert "sample ratio OK" in result.verdict


def test_fixed_horizon_withholds_significance() -> None:
    exp = experiment(planned_sample_size=10_000)
    result = analyze(exp, data({"A": 0.10, "B": 0.15, "C": 0.10}, n=2000), n_bootstrap=0)
    assert not result.final
    assert "increases" not in result.verdict
    assert "not final: 2000 of 10000" in result.verdict
    later = analyze(
        experiment(planned_sample_size=None, end_at=datetime(2020, 1, 1, tzinfo=UTC)),
        data({"A": 0.10, "B": 0.15, "C": 0.10}, n=2000),
        n_bootstrap=0,
        now=datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=1),
    )
    assert later.final


def test_srm_reported_in_verdict() -> None:
    d = data({"A": 0.1, "B": 0.1, "C": 0.1})
    d["B"] = {k: MetricSamples(v.values[:4200]) for k, v in d["B"].items()}
    result = analyze(experiment(), d, n_bootstrap=0)
    assert not result.srm.ok
    assert "SAMPLE RATIO MISMATCH" in result.verdict


def test_cuped_narrows_interval() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    d, plain = {}, {}
    for v in ("A", "B", "C"):
        pre = rng.lognormal(3, 0.5, n)
        post = pre + rng.normal(1.0 if v == "B" else 0.0, 3, n)
        d[v] = {
            "conversion": MetricSamples((rng.random(n) < 0.1).astype(float)),
            "revenue": MetricSamples(post, covariate=pre),
        }
        plain[v] = {"conversion": d[v]["conversion"], "revenue": MetricSamples(post)}
    with_cuped = analyze(experiment(), d, n_bootstrap=0).for_metric("revenue")[0]
    without = analyze(experiment(), plain, n_bootstrap=0).for_metric("revenue")[0]
    width = lambda c: c.diff_ci[1] - c.diff_ci[0]  # noqa: E731
    assert "CUPED" in with_cuped.method
    assert width(with_cuped) < 0.5 * width(without)


def test_sequential_experiment_reports_always_valid_intervals() -> None:
    exp = experiment(planned_sample_size=None, sequential=True)
    result = analyze(exp, data({"A": 0.10, "B": 0.13, "C": 0.10}), n_bootstrap=0)
    fixed = analyze(experiment(), data({"A": 0.10, "B": 0.13, "C": 0.10}), n_bootstrap=0)
    seq_b = result.for_metric("conversion")[0]
    fix_b = fixed.for_metric("conversion")[0]
    assert "mSPRT" in seq_b.method
    assert seq_b.diff_ci[1] - seq_b.diff_ci[0] > fix_b.diff_ci[1] - fix_b.diff_ci[0]
    assert result.final


def test_write_report_creates_png_and_markdown(tmp_path: Path) -> None:
    result = analyze(experiment(), data({"A": 0.10, "B": 0.13, "C": 0.10}), n_bootstrap=0)
    files = write_report(result, tmp_path)
    assert files["plot"].read_bytes()[:4] == b"\x89PNG"
    text = files["markdown"].read_text()
    assert result.verdict in text and "| conversion | B |" in text
