"""``personify experiments ...``, ``personify ope`` and ``personify simulate`` through
typer's CliRunner, on a SQLite file."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import numpy as np
import pytest
import typer
from typer.testing import CliRunner, Result

from personify.cli import experiments, ope, simulate
from personify.cli.context import CliState
from personify.cli.errors import USER_ERROR_EXIT, ErrorHandlingGroup
from personify.domain.events import Event
from personify.experiments.bandits import DecisionLog
from personify.experiments.definitions import Experiment
from personify.experiments.ports import ExposureRecord
from personify.experiments.service import assign_unit, log_exposure
from personify.storage.registry import open_stores
from personify.storage.sql.experiments import (
    SqlAliasStore,
    SqlDecisionLogStore,
    SqlExperimentStore,
    SqlExposureLog,
)

YAML = """
name: home-reco
hypothesis: personalized blocks raise CTR
variants:
  - name: control
    payload: {personalized: false}
  - name: reco
layer: home
primary_metric: {name: ctr, kind: ratio}
guardrail_metrics: [{name: conversion}]
planned_sample_size: 50
"""


def build_app() -> typer.Typer:
    """The commands as the lead registers them in ``personify.cli.main``."""
    app = typer.Typer(cls=ErrorHandlingGroup, no_args_is_help=True)

    @app.callback()
    def main(
        ctx: typer.Context,
        database_url: Annotated[str | None, typer.Option("--database-url")] = None,
    ) -> None:
        state = CliState(database_url=database_url)
        ctx.obj = state
        ctx.call_on_close(state.close)

    app.add_typer(experiments.app, name="experiments")
    ope.register(app)
    simulate.register(app)
    return app


@pytest.fixture
def run(database_url: str) -> Callable[..., Result]:
    runner = CliRunner(env={"COLUMNS": "220"})
    app = build_app()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, ["--database-url", database_url, *args])

    return invoke


def _serve_and_click(database_url: str, n: int = 200) -> dict[str, int]:
    """Assign, expose and log impressions / clicks for ``n`` visitors (reco clicks more)."""
    stores = open_stores(database_url)
    assert stores.database is not None
    db = stores.database
    store = SqlExperimentStore(db, Experiment.model_validate)
    log = SqlExposureLog(db, ExposureRecord)
    aliases = SqlAliasStore(db).for_tenant("default")
    t0 = datetime.now(UTC) - timedelta(hours=3)
    events: list[Event] = []
    per_variant: dict[str, int] = {}
    for i in range(n):
        (a,) = assign_unit(store, "default", user_id=None, anonymous_id=f"v{i}", aliases=aliases)
        assert a.variant is not None
        per_variant[a.variant] = per_variant.get(a.variant, 0) + 1
        log_exposure(log, "default", a, timestamp=t0)
        ts = t0 + timedelta(minutes=1, seconds=i)
        events.append(Event(event_id=f"imp{i}", type="impression", anonymous_id=f"v{i}",
                            item_ids=["x"], recommendation_id=f"r{i}", timestamp=ts))
        if a.variant == "reco" or i % 4 == 0:
            events.append(Event(event_id=f"clk{i}", type="click", anonymous_id=f"v{i}",
                                item_id="x", recommendation_id=f"r{i}", timestamp=ts))
    stores.events.append("default", events)
    stores.close()
    return per_variant


def test_create_start_report_stop(
    run: Callable[..., Result], database_url: str, tmp_path: Path
) -> None:
    definition = tmp_path / "exp.yaml"
    definition.write_text(YAML, encoding="utf-8")
    created = run("experiments", "create", str(definition))
    assert created.exit_code == 0, created.output
    assert "Created experiment home-reco" in created.output
    assert "draft" in run("experiments", "list").output
    started = run("experiments", "start", "home-reco")
    assert started.exit_code == 0 and "buckets 0..9999" in started.output
    per_variant = _serve_and_click(database_url)
    listed = run("experiments", "list", "--status", "running")
    assert "home-reco" in listed.output and f"reco: {per_variant['reco']}" in listed.output
    out = tmp_path / "reports"
    reported = run("experiments", "report", "home-reco", "--out", str(out))
    assert reported.exit_code == 0, reported.output
    assert "reco increases ctr" in reported.output
    assert "sample ratio ok" in reported.output.lower()
    assert (out / "home-reco.md").exists() and (out / "home-reco_lifts.png").exists()
    markdown = (out / "home-reco.md").read_text(encoding="utf-8")
    assert f"reco {per_variant['reco']}" in markdown
    stopped = run("experiments", "stop", "home-reco")
    assert stopped.exit_code == 0 and "Stopped home-reco" in stopped.output
    again = run("experiments", "stop", "home-reco")
    assert again.exit_code == USER_ERROR_EXIT and "is stopped" in again.output


def test_user_errors_are_one_line_with_the_field(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "variants": [{"name": "a"}],
                               "primary_metric": {"name": "ctr"}, "sequential": True}))
    got = run("experiments", "create", str(bad))
    assert got.exit_code == USER_ERROR_EXIT and "field: variants" in got.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed", encoding="utf-8")
    assert run("experiments", "create", str(broken)).exit_code == USER_ERROR_EXIT
    missing = run("experiments", "create", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == USER_ERROR_EXIT and "no file" in missing.output
    unknown = run("experiments", "start", "ghost")
    assert unknown.exit_code == USER_ERROR_EXIT and "no experiment named 'ghost'" in unknown.output
    assert "No experiments" in run("experiments", "list").output


def test_report_before_start_is_refused(run: Callable[..., Result], tmp_path: Path) -> None:
    definition = tmp_path / "exp.yaml"
    definition.write_text(YAML, encoding="utf-8")
    run("experiments", "create", str(definition))
    got = run("experiments", "report", "home-reco", "--out", str(tmp_path / "r"))
    assert got.exit_code == USER_ERROR_EXIT and "has not started" in got.output


def test_ope_on_open_bandit_random_policy_recovers_its_own_click_rate(
    run: Callable[..., Result], datasets_dir: Path, tmp_path: Path
) -> None:
    """IPS of the uniform policy on uniform logs is exactly the observed click rate."""
    out = tmp_path / "ope.json"
    got = run("ope", "--log", str(datasets_dir / "open_bandit_obd"), "--campaign", "men",
              "--behavior", "random", "--policy", "random", "--dm-bootstrap", "0",
              "--out", str(out))
    assert got.exit_code == 0, got.output
    rows = json.loads(out.read_text())
    assert [r["estimator"] for r in rows] == ["ips", "snips", "dm", "dr"]
    ips = rows[0]
    assert ips["value"] == pytest.approx(ips["on_policy"], rel=1e-9)
    assert all(r["ci_low"] <= r["on_policy"] <= r["ci_high"] for r in rows)


def test_ope_on_open_bandit_bts_from_random(
    run: Callable[..., Result], datasets_dir: Path
) -> None:
    got = run("ope", "--log", str(datasets_dir / "open_bandit_obd"), "--campaign", "all",
              "--policy", "bts", "-e", "ips", "-e", "snips")
    assert got.exit_code == 0, got.output
    assert "bts policy on campaign all" in got.output and "on-policy value" in got.output
    assert "snips" in got.output and "dr" not in got.output.split("estimator")[1]
    bad = run("ope", "--log", str(datasets_dir / "open_bandit_obd"), "--campaign", "kids")
    assert bad.exit_code == USER_ERROR_EXIT and "field: campaign" in bad.output


def _uniform_decisions(n: int, seed: int = 0) -> tuple[list[DecisionLog], list[float], float]:
    """Uniform logging over 3 actions with known click rates; true uniform value = mean."""
    rng = np.random.default_rng(seed)
    rates = {"a": 0.1, "b": 0.3, "c": 0.5}
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    decisions, rewards = [], []
    for i in range(n):
        chosen = str(rng.choice(list(rates)))
        decisions.append(DecisionLog(f"dec-{i}", [1.0, 0.0], list(rates), [chosen],
                                     [1 / 3], "offers", t0 + timedelta(seconds=i)))
        rewards.append(float(rng.random() < rates[chosen]))
    return decisions, rewards, float(np.mean(list(rates.values())))


def test_ope_on_a_personify_decision_file(run: Callable[..., Result], tmp_path: Path) -> None:
    decisions, rewards, truth = _uniform_decisions(3000)
    path = tmp_path / "decisions.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for d, r in zip(decisions, rewards, strict=True):
            fh.write(json.dumps({**d.to_dict(), "rewards": {d.chosen[0]: r}}) + "\n")
    out = tmp_path / "ope.json"
    got = run("ope", "--format", "personify", "--log", str(path), "--dm-bootstrap", "20",
              "--out", str(out))
    assert got.exit_code == 0, got.output
    rows = {r["estimator"]: r for r in json.loads(out.read_text())}
    assert rows["ips"]["value"] == pytest.approx(np.mean(rewards))
    for r in rows.values():
        assert r["ci_low"] <= truth <= r["ci_high"], r


def test_ope_on_a_decision_file_leaves_out_unseen_page_rows(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    """``seen_only`` decisions (pages of rows) whose first row was seen and clicked, seen and
    not clicked, or never seen: the estimate equals the one from the seen decisions alone."""
    decisions, rewards, _ = _uniform_decisions(600, seed=2)
    for d in decisions:
        d.seen_only = True
    fates = ["clicked", "unclicked", "unseen"]
    lines = []
    for i, (d, r) in enumerate(zip(decisions, rewards, strict=True)):
        fate = fates[i % 3] if r else fates[1 + i % 2]
        row = {**d.to_dict(), "rewards": {d.chosen[0]: 1.0} if fate == "clicked" else {},
               "seen": [] if fate == "unseen" else [d.chosen[0]]}
        lines.append((fate, json.dumps(row)))
    assert {f for f, _ in lines} == set(fates)
    everything, seen_only = tmp_path / "all.jsonl", tmp_path / "seen.jsonl"
    everything.write_text("".join(line + "\n" for _, line in lines))
    seen_only.write_text("".join(line + "\n" for f, line in lines if f != "unseen"))
    results = []
    for path in (everything, seen_only):
        out = tmp_path / f"{path.stem}.json"
        got = run("ope", "--format", "personify", "--log", str(path), "--dm-bootstrap", "0",
                  "--out", str(out))
        assert got.exit_code == 0, got.output
        results.append({r["estimator"]: (r["value"], r["n_rounds"])
                        for r in json.loads(out.read_text())})
    n_unseen = sum(f == "unseen" for f, _ in lines)
    assert results[0]["ips"][1] == len(lines) - n_unseen
    assert results[0] == results[1]
    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps(decisions[0].to_dict()) + "\n")
    refused = run("ope", "--format", "personify", "--log", str(missing))
    assert refused.exit_code == USER_ERROR_EXIT and "seen" in refused.output


def test_ope_on_decisions_stored_by_the_engine(
    run: Callable[..., Result], database_url: str
) -> None:
    decisions, rewards, _ = _uniform_decisions(200, seed=1)
    stores = open_stores(database_url)
    assert stores.database is not None
    log = SqlDecisionLogStore(stores.database, DecisionLog.from_dict)
    clicks = []
    for d, r in zip(decisions, rewards, strict=True):
        log.record("default", d)
        if r:
            clicks.append(Event(event_id=f"c-{d.decision_id}", type="click", user_id="u",
                                item_id=d.chosen[0], recommendation_id=d.decision_id,
                                timestamp=d.timestamp + timedelta(seconds=1)))
    stores.events.append("default", clicks)
    stores.close()
    got = run("ope", "--format", "personify", "--point", "offers", "-e", "ips",
              "--dm-bootstrap", "0")
    assert got.exit_code == 0, got.output
    assert f"{np.mean(rewards):.5f}" in got.output
    missing = run("ope", "--format", "personify", "--point", "nowhere")
    assert missing.exit_code == USER_ERROR_EXIT and "no decisions" in missing.output


def test_simulate_on_a_small_synthetic_population(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    out = tmp_path / "sim.json"
    got = run("simulate", "--runs", "3", "--units", "300", "--compare-units", "600",
              "--bandit-rounds", "60", "--out", str(out))
    assert got.exit_code == 0, got.output
    assert "A/A false-positive rate" in got.output and "synthetic" in got.output
    metrics = json.loads(out.read_text())
    assert 0 <= metrics["aa_false_positive_rate"] <= 1 and metrics["aa_runs"] == 3
    assert metrics["bandit_regret_ratio"] > 0
    missing = run("simulate", "--dataset", str(tmp_path / "none.csv.gz"))
    assert missing.exit_code == USER_ERROR_EXIT and "field: dataset" in missing.output
