"""Which failures each kind of call repeats (both clients run the same conversation): an
idempotent call after any transport error, 429 or 5xx; a call whose repeat would act twice
(a bandit decision, a new key, a consent record) only when the request never reached the
server (no connection, or 429)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from personify.client import AsyncPersonifyClient, PersonifyClient
from personify.domain.errors import Unavailable

DECISION = {"decision_id": "d1", "point": "offer", "policy": "epsilon_greedy",
            "actions": [{"id": "a", "rank": 1, "propensity": 0.9, "score": 0.1}]}


def script(*steps: Any) -> tuple[httpx.MockTransport, list[str]]:
    """A transport that plays ``steps`` in order: an exception class is raised (after the
    request "reached" the server unless it is a connect error), a status answers with it."""
    seen: list[str] = []
    queue = list(steps)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        step = queue.pop(0)
        if isinstance(step, type):
            raise step("scripted", request=request)
        if step == 200:
            return httpx.Response(200, json=DECISION if request.url.path == "/v1/decisions"
                                  else {"status": "ok"})
        return httpx.Response(step, headers={"Retry-After": "0"},
                              json={"error": {"code": "unavailable" if step == 503
                                              else "rate_limited", "message": "busy"}})

    return httpx.MockTransport(handle), seen


def decide(client: Any) -> Any:
    return client.decide("offer", ["a", "b"])


def health(client: Any) -> Any:
    return client.health()


@pytest.mark.parametrize(("steps", "sends", "outcome"), [
    ([httpx.ReadError, 200], 1, httpx.ReadError),        # may have decided: not repeated
    ([httpx.ConnectError, 200], 2, None),                # never reached the server
    ([429, 200], 2, None),                               # refused before anything was done
    ([503, 200], 1, Unavailable),                        # may have decided
])
def test_a_decision_is_repeated_only_when_it_cannot_have_been_made(
    steps: list[Any], sends: int, outcome: type[Exception] | None
) -> None:
    for make in (_sync, _async):
        seen, raised = make(steps, decide)
        assert len(seen) == sends and seen[0] == "/v1/decisions"
        assert raised is outcome


@pytest.mark.parametrize("failure", [httpx.ReadError, httpx.ConnectError, 429, 503, 502])
def test_an_idempotent_call_is_repeated_after_any_passing_failure(failure: Any) -> None:
    for make in (_sync, _async):
        seen, raised = make([failure, failure, 200], health)
        assert len(seen) == 3 and raised is None


def _sync(steps: list[Any], call: Callable[[Any], Any]) -> tuple[list[str], Any]:
    transport, seen = script(*steps)
    with PersonifyClient("http://x", "k", retries=3, backoff=0.0, transport=transport) as client:
        try:
            call(client)
        except Exception as error:
            return seen, type(error)
    return seen, None


def _async(steps: list[Any], call: Callable[[Any], Any]) -> tuple[list[str], Any]:
    transport, seen = script(*steps)

    async def scenario() -> Any:
        async with AsyncPersonifyClient("http://x", "k", retries=3, backoff=0.0,
                                        transport=transport) as client:
            try:
                await call(client)
            except Exception as error:
                return type(error)
        return None

    return seen, asyncio.run(scenario())
