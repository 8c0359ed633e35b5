"""The README's "Quick start with your own data", followed literally: its shell block is parsed
and every ``personify`` command runs as written (``export`` sets the environment, ``KEY=`` takes
the secret ``keys create`` printed, ``personify serve`` becomes an in-process app on the same
settings and ``curl`` a request to it). The answer must be personalized, under five minutes."""

from __future__ import annotations

import csv
import os
import re
import shlex
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from personify.api import create_app
from personify.cli.main import app
from personify.settings import load_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

README = Path(__file__).resolve().parents[2] / "README.md"


def walk_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start with your own data", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "the section holds a bash block"
    return [line.split("  #", 1)[0].strip() for line in block.group(1).splitlines()
            if line.strip()]


def write_shop(folder: Path) -> None:
    """The two files the section describes: two taste groups of customers."""
    with (folder / "products.csv").open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["sku", "name", "category"])
        for k in range(20):
            out.writerow([f"sku-{k}", f"Product {k}", "mugs" if k % 2 else "candles"])
    with (folder / "orders.csv").open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["customer_id", "sku", "ordered_at"])
        for c in range(60):
            for k in range(6):
                sku = ((c * 7 + k * 3) % 10) * 2 + c % 2
                out.writerow([f"c-{c}", f"sku-{sku}", f"2026-03-{1 + k:02d}T10:{c % 60:02d}:00Z"])


def test_the_readme_walk_gives_personalized_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_shop(tmp_path)
    runner = CliRunner()
    started = time.monotonic()
    answers = []
    env: dict[str, str] = {}
    for line in walk_commands():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = value
            monkeypatch.setenv(name, value)
        elif line.startswith("KEY="):
            env["KEY"] = env["printed secret"]
        elif line.startswith("personify serve"):
            client = TestClient(create_app(load_settings()))
            client.__enter__()
        elif line.startswith("curl "):
            args = shlex.split(os.path.expandvars(line.replace("$KEY", env["KEY"])))
            url = urlsplit(args[1])
            header = args[args.index("-H") + 1]
            name, _, value = header.partition(": ")
            answers.append(client.get(f"{url.path}?{url.query}", headers={name: value}))
        else:
            assert line.startswith("personify "), f"unexpected README command: {line}"
            result = runner.invoke(app, shlex.split(line)[1:])
            assert result.exit_code == 0, f"{line}\n{result.output}"
            if line.startswith("personify keys create"):
                env["printed secret"] = re.findall(r"[A-Za-z0-9_\-]{30,}", result.output)[-1]
    client.__exit__(None, None, None)
    assert time.monotonic() - started < 300
    [answer] = answers
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["personalized"] is True and len(body["items"]) == 5
    assert not body.get("warnings"), body["warnings"]
    assert (tmp_path / "models").is_dir()
