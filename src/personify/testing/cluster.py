"""A multi-node Personify on one machine, for the multi-node test and benchmark: API servers
(``personify serve``) and workers (``personify worker ...``) started as separate processes over
one database, one Redis and one model directory, exactly as separate machines would run them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Cluster:
    """Processes sharing ``env`` (``PERSONIFY_DATABASE_URL``, ``PERSONIFY_REDIS_URL``,
    ``PERSONIFY_MODEL_DIR`` ...); logs under ``workdir``; ``close()`` stops every one."""

    env: Mapping[str, str]
    workdir: Path
    nodes: list[Node] = field(default_factory=list)

    def _start(self, name: str, args: Sequence[str], port: int | None = None) -> Node:
        log = self.workdir / f"{name}.log"
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "personify.cli.main", *args], env=environment,
                stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir,
            )
        node = Node(name, process, log, port)
        self.nodes.append(node)
        return node

    def server(self, name: str) -> Node:
        port = free_port()
        return self._start(name, ["serve", "--host", "127.0.0.1", "--port", str(port)], port)

    def worker(self, name: str, *args: str) -> Node:
        return self._start(name, ["worker", *args])

    def wait_ready(self, nodes: Sequence[Node], timeout: float = 240.0) -> None:
        """Until every server's ``/ready`` answers 200 (raises with the log's tail if not)."""
        deadline = time.monotonic() + timeout
        pending = list(nodes)
        with httpx.Client(timeout=2.0) as client:
            while pending:
                node = pending[0]
                if not node.alive():
                    raise RuntimeError(f"{node.name} exited: {self.tail(node)}")
                try:
                    if client.get(f"{node.url}/ready").status_code == 200:
                        pending.pop(0)
                        continue
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{node.name} not ready: {self.tail(node)}")
                time.sleep(0.2)

    def tail(self, node: Node, chars: int = 3000) -> str:
        try:
            return node.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kill(self, node: Node, sig: int = signal.SIGKILL) -> None:
        if node.alive():
            node.process.send_signal(sig)
        node.process.wait(timeout=30)

    def close(self) -> None:
        for node in self.nodes:
            if node.alive():
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            try:
                node.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(timeout=10)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
