"""``personify import`` / ``export``: the report, the error file, exit codes."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from personify.storage.registry import open_stores


def _events_csv(path: Path, bad: bool = False) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["who", "what", "kind", "when", "device"])
        for i in range(6):
            writer.writerow([f"u{i}", f"i{i}", "view", f"2024-02-0{1 + i}T08:00:00Z", "tv"])
        if bad:
            writer.writerow(["", "i9", "view", "2024-02-09T08:00:00Z", "tv"])
    return path


MAPS = [
    "--map",
    "user_id=who",
    "--map",
    "item_id=what",
    "--map",
    "type=kind",
    "--map",
    "timestamp=when",
    "--map",
    "context.device=device",
]


def test_import_prints_the_report(
    personify: Callable[..., Result], database_url: str, tmp_path: Path
) -> None:
    path = _events_csv(tmp_path / "events.csv")
    result = personify("import", "events", str(path), *MAPS, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "rows read" in result.output and "stored" in result.output
    again = personify("import", "events", str(path), *MAPS, "--no-progress")
    assert again.exit_code == 0
    assert "duplicates" in again.output
    with open_stores(database_url) as stores:
        assert stores.events.count("default") == 6


def test_partial_import_exits_1_and_writes_errors(
    personify: Callable[..., Result], database_url: str, tmp_path: Path
) -> None:
    path = _events_csv(tmp_path / "events.csv", bad=True)
    errors = tmp_path / "errors.csv"
    result = personify(
        "import",
        "events",
        str(path),
        *MAPS,
        "--errors",
        str(errors),
        "--no-progress",
        "--tenant",
        "shop-2",
    )
    assert result.exit_code == 1, result.output
    assert "1 row(s) rejected" in result.output
    with open(errors, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["row"], r["field"]) for r in rows] == [("8", "user_id")]
    with open_stores(database_url) as stores:
        assert stores.events.count("shop-2") == 6
        assert stores.events.count("default") == 0


def test_import_user_errors_exit_2(personify: Callable[..., Result], tmp_path: Path) -> None:
    path = _events_csv(tmp_path / "events.csv")
    unknown = personify("import", "events", str(path), "--no-progress")
    assert unknown.exit_code == 2
    lines = unknown.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: column(s) 'who'")
    assert "accepted:" in lines[0]
    bad_map = personify("import", "events", str(path), "--map", "userid")
    assert bad_map.exit_code == 2 and "field: --map" in bad_map.output
    missing = personify("import", "users", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_export_then_import_elsewhere(personify: Callable[..., Result], tmp_path: Path) -> None:
    source = _events_csv(tmp_path / "events.csv")
    assert personify("import", "events", str(source), *MAPS, "--no-progress").exit_code == 0
    exported = tmp_path / "out.parquet"
    result = personify("export", "events", str(exported), "--no-progress")
    assert result.exit_code == 0 and "Exported 6 events" in result.output
    other = f"sqlite:///{tmp_path / 'other.db'}"
    from typer.testing import CliRunner

    from personify.cli.main import app

    back = CliRunner().invoke(
        app, ["--database-url", other, "import", "events", str(exported), "--no-progress"]
    )
    assert back.exit_code == 0, back.output
    with open_stores(other) as stores:
        assert stores.events.count("default") == 6
        assert {e.context.device for e in stores.events.scan("default")} == {"tv"}


def test_export_events_partitioned_by_date(
    personify: Callable[..., Result], tmp_path: Path
) -> None:
    source = _events_csv(tmp_path / "events.csv")
    assert personify("import", "events", str(source), *MAPS, "--no-progress").exit_code == 0
    out = tmp_path / "by-day"
    result = personify("export", "events", str(out), "--format", "parquet",
                       "--partition-by", "date", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "Exported 6 events" in result.output
    assert sorted(p.name for p in out.iterdir()) == [f"date=2024-02-0{d}" for d in range(1, 7)]
    wrong = personify("export", "users", str(tmp_path / "u"), "--partition-by", "date")
    assert wrong.exit_code == 2 and "field: partition_by" in wrong.output
    unknown = personify("export", "events", str(tmp_path / "e"), "--partition-by", "week")
    assert unknown.exit_code == 2 and "unknown partitioning" in unknown.output
