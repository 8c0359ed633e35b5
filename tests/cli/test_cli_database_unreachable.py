"""An unreachable or silent PostgreSQL: one red line naming ``database_url`` and exit code 2
(docs/cli.md), within the 10 s connect timeout instead of a traceback or a hang."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest
from typer.testing import CliRunner

from personify.cli.main import app
from personify.domain.errors import Unavailable
from personify.storage.registry import open_stores

Run = Callable[..., object]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections (the kernel's backlog) but never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


def test_a_refused_connection_is_one_line_and_exit_2() -> None:
    url = f"postgresql://nobody@127.0.0.1:{_closed_port()}/test"
    result = CliRunner().invoke(app, ["--database-url", url, "db", "upgrade"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "database_url" in lines[0] and "refused" in lines[0].lower()


def test_a_silent_server_times_out_in_about_ten_seconds(silent_port: int) -> None:
    url = f"postgresql://nobody@127.0.0.1:{silent_port}/test"
    started = time.monotonic()
    result = CliRunner().invoke(app, ["--database-url", url, "db", "upgrade"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 2, result.output
    assert "database_url" in result.output and "Traceback" not in result.output
    assert 5 < elapsed < 40, elapsed
    started = time.monotonic()
    with pytest.raises(Unavailable, match="cannot connect"):
        open_stores(url)  # what `personify serve` opens first
    assert time.monotonic() - started < 40
