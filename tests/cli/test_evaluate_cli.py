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
