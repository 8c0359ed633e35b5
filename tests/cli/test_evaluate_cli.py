"""``personify evaluate`` on a user's own CSV and on a shared dataset: it prints the table and
writes the report with the models next to the baselines."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from personify.cli.main import app


def _planted_csv(path: Path) -> Path:
    rng = random.Random(0)
    lines = ["user_id,item_id,timestamp"]
    for u in range(80):
        group = u % 2
        for j in range(12):
            item = group * 30 + rng.randrange(30)
            lines.append(f"u{u},i{item},{1_700_000_000 + u * 100 + j}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_evaluate_a_csv_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["evaluate", str(_planted_csv(tmp_path / "mine.csv")),
                                      "-m", "itemknn", "--out", str(out), "--k", "10"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    text = json.dumps(results)
    assert "itemknn" in text and "popularity" in text and "random" in text
    assert (out / "report.md").exists()


@pytest.mark.datasets
def test_evaluate_runs_on_the_diginetica_sample(tmp_path: Path, datasets_dir: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "diginetica", "--datasets-dir",
                                      str(datasets_dir), "-m", "rp3beta", "--out",
                                      str(tmp_path / "r")])
    assert result.exit_code == 0, result.output


def test_unknown_dataset_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "no-such-thing", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "dataset" in result.output


def test_evaluate_served_compares_the_chosen_configuration_with_each_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("optuna")
    monkeypatch.setenv("COLUMNS", "80")
    out = tmp_path / "report"
    rng = random.Random(1)
    lines = ["user_id,item_id,timestamp"]
    for u in range(90):  # people active through the whole period, ten newcomers at its end
        for j in range(12):
            item = (u % 3) * 20 + rng.randrange(20)
            stamp = 1_700_000_000 + (j * 1000 + u if u < 80 else 20_000 + u * 10 + j)
            lines.append(f"u{u},i{item},{stamp}")
    (tmp_path / "mine.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "mine.csv"),
                                      "--budget", "3", "--out", str(out), "--k", "20"])
    assert result.exit_code == 0, result.output
    # the temporal split leaves the last users with no training history: said, and apart
    assert "no training history" in result.output and "cold" in result.output
    results = json.loads((out / "results.json").read_text())["results"]
    assert "served" in results and "popularity" in results
    tuned = [name for name in results if name.endswith("(tuned)")]
    assert {"rp3beta (tuned)", "itemknn (tuned)", "ease (tuned)"} <= set(tuned)
    served = results["served"]
    assert served["cold_users"] > 0 and served["users"] > 0
    assert served["params"]["validation"] in ("per-user temporal", "per-user random")
    # the served chain learns the groups: far above popularity on the warm users
    assert served["ndcg@20"] > 1.5 * results["popularity"]["ndcg@20"]
    table = [line for line in result.output.splitlines() if "│" in line or "┃" in line]
    assert table and all(len(line) <= 80 for line in table)
    assert any("served" in line for line in table)
