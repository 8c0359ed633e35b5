"""Which failures each kind of call repeats (both clients run the same conversation): an
idempotent call after any transport error, 429 or 5xx; a call whose repeat would act twice
(a bandit decision, a new key, a consent record) only when the request never reached the
server (no connection, or 429)."""

from __future__ import annotations

import asyncio
import json
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


def test_an_event_without_an_id_gets_one_before_the_first_attempt() -> None:
    """The id is the idempotency key: the lost first attempt and its retry carry the same one,
    so the server stores one event; an id given (even a bad one) is sent as it is."""
    bodies: list[dict[str, Any]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        if len(bodies) == 1:
            raise httpx.ReadError("answer lost", request=request)
        return httpx.Response(200, json={"event_id": bodies[-1]["event_id"], "status": "stored"})

    event = {"type": "view", "user_id": "u", "item_id": "i", "timestamp": "2026-01-01T00:00:00Z"}
    with PersonifyClient("http://x", "k", backoff=0.0,
                         transport=httpx.MockTransport(handle)) as client:
        ack = client.track(event)
        assert len(bodies) == 2 and bodies[0] == bodies[1]
        assert ack.event_id == bodies[0]["event_id"] and ack.event_id.startswith("py-")
        bodies.clear()
        client.track(event)
        assert bodies[-1]["event_id"] != ack.event_id        # a new event, a new id
        bodies.clear()
        client.track({**event, "event_id": ""})
        assert bodies[-1]["event_id"] == ""                    # the server names the bad field
