"""A small open-loop HTTP/1.1 load generator (asyncio, keep-alive, raw sockets) meant to run as
its own process: requests are *scheduled* at a fixed rate, and latency is measured from the
scheduled time, so a slow server cannot hide queueing (no coordinated omission).

Run: python benchmarks/_load.py --port 8000 --rate 500 --seconds 20 --body-file reqs.jsonl
Prints one JSON line: sent, ok, errors, p50/p90/p99/max latency in ms, achieved rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    errors: int = 0
    dropped: int = 0
    """Scheduled requests still unanswered at the hard deadline (counted as infinitely slow)."""
    statuses: dict[int, int] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def run(
    host: str,
    port: int,
    requests: list[bytes],
    rate: float,
    seconds: float,
    connections: int,
    closed_loop: bool = False,
) -> Stats:
    stats = Stats()
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    start = time.perf_counter() + 0.2
    total = int(rate * seconds) if not closed_loop else 0

    async def producer() -> None:
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await queue.put((due, requests[i % len(requests)]))
        for _ in range(connections):
            await queue.put(None)

    hard_deadline = start + seconds + max(5.0, seconds * 0.5)

    async def worker(k: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        i = k
        deadline = start + seconds
        while True:
            if not closed_loop and time.perf_counter() > hard_deadline:
                while not queue.empty():  # the server fell behind: drop what is still queued
                    item = queue.get_nowait()
                    if item is None:
                        queue.put_nowait(None)  # leave the end marker for another worker
                        break
                    stats.dropped += 1
                break
            if closed_loop:
                if time.perf_counter() >= deadline:
                    break
                due, payload = time.perf_counter(), requests[i % len(requests)]
                i += connections
            else:
                item = await queue.get()
                if item is None:
                    break
                due, payload = item
            status = None
            for attempt in range(2):  # a keep-alive connection the server closed: reconnect once
                try:
                    writer.write(payload)
                    status = await _read_response(reader)
                    break
                except (OSError, asyncio.IncompleteReadError):
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    if attempt == 1:
                        status = None
            if status is None:
                stats.errors += 1
            else:
                stats.statuses[status] = stats.statuses.get(status, 0) + 1
                if 200 <= status < 300:
                    stats.ok += 1
                else:
                    stats.errors += 1
            stats.latencies.append((time.perf_counter() - due) * 1000)
        writer.close()

    tasks = [asyncio.create_task(worker(k)) for k in range(connections)]
    if not closed_loop:
        await producer()
    await asyncio.gather(*tasks)
    return stats


def build_request(
    method: str, path: str, host: str, body: bytes | None, headers: dict[str, str]
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--closed-loop", action="store_true")
    parser.add_argument("--method", default="POST")
    parser.add_argument("--path", default="/v1/recommendations")
    parser.add_argument("--key", default="")
    parser.add_argument("--body-file", help="JSON lines: one request body (or {path: ...}) each")
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    requests: list[bytes] = []
    if args.body_file:
        with open(args.body_file, encoding="utf-8") as fh:
            for line in fh:
                spec = json.loads(line)
                if "path" in spec and "body" not in spec:
                    requests.append(build_request("GET", spec["path"], args.host, None, headers))
                else:
                    body = json.dumps(spec.get("body", spec)).encode()
                    requests.append(
                        build_request(
                            args.method, spec.get("path", args.path), args.host, body, headers
                        )
                    )
    else:
        requests.append(build_request(args.method, args.path, args.host, None, headers))
    stats = asyncio.run(
        run(
            args.host,
            args.port,
            requests,
            args.rate,
            args.seconds,
            args.connections,
            args.closed_loop,
        )
    )
    lat = stats.latencies + [float("inf")] * stats.dropped
    print(
        json.dumps(
            {
                "sent": len(lat),
                "ok": stats.ok,
                "errors": stats.errors,
                "dropped": stats.dropped,
                "statuses": stats.statuses,
                "p50_ms": percentile(lat, 50),
                "p90_ms": percentile(lat, 90),
                "p99_ms": percentile(lat, 99),
                "max_ms": max(stats.latencies, default=None),
                "achieved_rps": stats.ok / args.seconds,
            }
        )
    )


if __name__ == "__main__":
    main()
