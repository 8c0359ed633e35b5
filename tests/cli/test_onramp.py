"""The on-ramp from a user's own CSV: the legal basis is an explicit recorded choice, training
says exactly why events were left out and how to change it, and the model directory is
absolute (the same versions from any working directory)."""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result


def write_orders(path: Path, *, customers: int = 40, products: int = 20) -> Path:
    """A shop's order export: customer_id, sku, ordered_at (two taste groups)."""
    rng = random.Random(7)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["customer_id", "sku", "ordered_at"])
        for c in range(customers):
            group = c % 2
            for k in range(8):
                sku = rng.randrange(products // 2) * 2 + group
                out.writerow([f"c-{c}", f"sku-{sku}", f"2026-03-{1 + k:02d}T10:{c:02d}:00Z"])
    return path


IMPORT = ["import", "events", "orders.csv", "--map", "user_id=customer_id", "--map",
          "item_id=sku", "--map", "timestamp=ordered_at", "--default", "type=purchase",
          "--no-progress"]


def test_without_a_legal_basis_train_says_why_and_how_to_change_it(
    personify: Callable[..., Result], tmp_path: Path
) -> None:
    write_orders(tmp_path / "orders.csv")
    imported = personify(*IMPORT)
    assert imported.exit_code == 0, imported.output
    assert "No legal basis recorded" in imported.output
    failed = personify("train", "--no-select")
    assert failed.exit_code == 2
    text = " ".join(failed.output.split())
    assert "0 usable item events" in text
    assert "320 events excluded: no profiling consent recorded" in text
    assert "personify init --legal-basis consent" in text

    status = personify("status")
    assert "not recorded" in " ".join(status.output.split())
    init = personify("init", "--legal-basis", "consent")
    assert init.exit_code == 0, init.output
    trained = personify("train", "--no-select")
    assert trained.exit_code == 0, trained.output
    assert "excluded" not in trained.output


def test_a_legal_basis_of_none_keeps_only_people_with_recorded_consent(
    personify: Callable[..., Result], tmp_path: Path
) -> None:
    write_orders(tmp_path / "orders.csv")
    assert personify(*IMPORT, "--legal-basis", "none").exit_code == 0
    assert "legal basis: none:" in " ".join(personify("status").output.split())
    failed = personify("train", "--no-select")
    assert failed.exit_code == 2 and "320 events excluded" in " ".join(failed.output.split())
    bad = personify("init", "--legal-basis", "maybe")
    assert bad.exit_code == 2 and "consent, legitimate-interest, none" in bad.output
    assert personify("init", "--legal-basis", "legitimate_interest").exit_code == 0
    assert personify("train", "--no-select").exit_code == 0


def test_init_needs_the_choice_when_it_cannot_ask(personify: Callable[..., Result]) -> None:
    got = personify("init")
    assert got.exit_code == 2 and "--legal-basis" in got.output


def test_the_model_directory_is_absolute_and_shown(
    personify: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_orders(tmp_path / "orders.csv")
    assert personify(*IMPORT, "--legal-basis", "consent").exit_code == 0
    assert personify("train", "--no-select").exit_code == 0
    status = " ".join(personify("status").output.split())
    assert f"model directory: {tmp_path / 'models'}" in status
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # another working directory sees the same versions
    listed = personify("models", "list")
    assert listed.exit_code == 0 and "yes" in listed.output
    assert not (elsewhere / "var").exists()


def test_no_flag_has_a_double_negative() -> None:
    """Every boolean flag of every command reads sensibly: no ``--no-no-blend``."""
    import click
    import typer.main

    from personify.cli.main import app

    def walk(command: click.Command, path: str) -> list[str]:
        found = [f"{path} {o}" for p in command.params for o in [*p.opts, *p.secondary_opts]
                 if o.startswith("--no-no-")]
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                found += walk(sub, f"{path} {name}")
        return found

    assert walk(typer.main.get_command(app), "personify") == []


def test_ope_says_which_flags_each_format_needs(personify: Callable[..., Result]) -> None:
    shown = " ".join(personify("ope", "--help").output.split())
    assert "open_bandit (default): --log ROOT" in shown
    assert "personify: --point NAME" in shown
    wrong = " ".join(personify("ope", "--point", "home", "--log", ".").output.split())
    assert "--point does not apply to --format open_bandit" in wrong
    missing = " ".join(personify("ope", "--format", "personify").output.split())
    assert "needs --point NAME or --log FILE.jsonl" in missing
    mixed = " ".join(personify("ope", "--format", "personify", "--campaign", "men").output.split())
    assert "--campaign does not apply to --format personify" in mixed
