"""The README's "API tour in Python", run as written: its ``python`` blocks are executed in
order, in one namespace, against a live server on a fresh database (only the demo's URL and
key are replaced by this server's). What a line's ``# comment`` says it prints must be printed,
so the README cannot rot: a renamed method, a changed answer or a new required field fails
here."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _uvicorn_server import running

from personify.api import create_app
from personify.domain.keys import Scope
from personify.settings import Settings
from personify.storage.registry import Stores, open_stores

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "## API tour in Python"
DEMO_URL, DEMO_KEY = '"http://127.0.0.1:8000"', '"demo-admin-key-not-for-production"'


def tour_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    assert HEADING in text, f"the README has a section {HEADING!r}"
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def expected_lines(block: str) -> list[str]:
    """What the block's ``print(...)  # comment`` lines say they print (``...`` matches any
    text)."""
    lines = re.finditer(r"^[ \t]*print\(.*\)[ \t]+# (.+)$", block, re.M)
    return [m.group(1).strip() for m in lines]


def printed(expected: str, lines: list[str]) -> int | None:
    """The index of the first output line matching ``expected``."""
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return next((k for k, line in enumerate(lines) if re.fullmatch(pattern, line.strip())), None)


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    opened = open_stores(f"sqlite:///{tmp_path}/tour.db")
    yield opened
    opened.close()


def test_the_readme_api_tour_runs_as_written(stores: Stores) -> None:
    blocks = tour_blocks()
    assert len(blocks) >= 9, "the tour covers ingestion, consent, recommendations, errors, " \
        "people, messages, experiments, export, erasure and the async client"
    assert blocks[0].count(DEMO_URL) == blocks[0].count(DEMO_KEY) == 1, \
        "the first block connects to the demo"
    _key, secret = stores.keys.create("default", "readme tour", [Scope.ADMIN])
    app = create_app(Settings(database_url="memory://"), stores=stores)
    namespace: dict[str, Any] = {"__name__": "readme_tour"}
    with running(app) as url:
        for number, block in enumerate(blocks, 1):
            code = block.replace(DEMO_URL, repr(url)).replace(DEMO_KEY, repr(secret))
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"README.md tour block {number}", "exec"), namespace)
            lines = out.getvalue().splitlines()
            for expected in expected_lines(block):
                found = printed(expected, lines)
                assert found is not None, (
                    f"block {number} should print {expected!r}; it printed {lines}")
                lines = lines[found + 1:]
        namespace["client"].close()
        # the async block's function, called again: three items each, from the live server
        shelves = asyncio.run(namespace["shelves"](["shopper-1", "shopper-2"]))
        assert [len(ids) for ids in shelves] == [3, 3]

    # what the tour did is in the store, and its last step erased alice
    answer = namespace["answer"]
    assert answer.items and all(item.explanation for item in answer.items)
    assert namespace["campaign"]["enqueued"] >= 2
    assert namespace["export"]["user_id"] == "alice" and namespace["export"]["events"]
    assert namespace["receipt"].profile_deleted
    assert stores.users.get("default", "alice") is None
    assert stores.events.count("default") > 25
