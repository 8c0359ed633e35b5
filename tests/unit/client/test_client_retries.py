"""Which failures each kind of call repeats (both clients run the same conversation): an
idempotent call, or a write protected by its Idempotency-Key (a bandit decision, a consent
record), after any transport error, 429 or 5xx; creating an API key (no key: its answer holds
a secret) only when the request never reached the server (no connection, or 429)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from personify.client import AsyncPersonifyClient, PersonifyClient
from personify.domain.errors import Conflict, Unavailable

DECISION = {"decision_id": "d1", "point": "offer", "policy": "epsilon_greedy",
            "actions": [{"id": "a", "rank": 1, "propensity": 0.9, "score": 0.1}]}


def script(*steps: Any, keys: list[str | None] | None = None
           ) -> tuple[httpx.MockTransport, list[str]]:
    """A transport that plays ``steps`` in order: an exception class is raised (after the
    request "reached" the server unless it is a connect error), a status answers with it."""
    seen: list[str] = []
    queue = list(steps)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if keys is not None:
            keys.append(request.headers.get("Idempotency-Key"))
        step = queue.pop(0)
        if isinstance(step, type):
            raise step("scripted", request=request)
        if step == 200:
            return httpx.Response(200, json=DECISION if request.url.path == "/v1/decisions"
                                  else KEY if request.url.path == "/v1/keys"
                                  else {"status": "ok"})
        return httpx.Response(step, headers={"Retry-After": "0"},
                              json={"error": {"code": "unavailable" if step == 503
                                              else "rate_limited", "message": "busy"}})

    return httpx.MockTransport(handle), seen


def decide(client: Any) -> Any:
    return client.decide("offer", ["a", "b"])


def health(client: Any) -> Any:
    return client.health()


KEY = {"key": {"key_id": "k1", "tenant": "default", "name": "n", "scopes": ["serve"],
               "created_at": "2026-01-01T00:00:00Z"}, "secret": "pfy_k1_x"}


def create_key(client: Any) -> Any:
    return client.create_key("n", ["serve"])


@pytest.mark.parametrize(("steps", "sends", "outcome"), [
    ([httpx.ReadError, 200], 1, httpx.ReadError),        # may have made a key: not repeated
    ([httpx.ConnectError, 200], 2, None),                # never reached the server
    ([429, 200], 2, None),                               # refused before anything was done
    ([503, 200], 1, Unavailable),                        # may have made a key
])
def test_a_new_key_is_repeated_only_when_it_cannot_have_been_made(
    steps: list[Any], sends: int, outcome: type[Exception] | None
) -> None:
    """The one write without an Idempotency-Key: its answer holds a secret the server never
    keeps to send again."""
    for make in (_sync, _async):
        seen, raised = make(steps, create_key)
        assert len(seen) == sends and seen[0] == "/v1/keys"
        assert raised is outcome


@pytest.mark.parametrize("failure", [httpx.ReadError, 503, 429])
def test_a_decision_is_repeated_under_one_idempotency_key(failure: Any) -> None:
    """A write the server would do twice (a bandit decision) carries an Idempotency-Key, the
    same on every attempt, so a lost answer is safe to ask again; a new call, a new key."""
    for make in (_sync, _async):
        keys: list[str | None] = []
        seen, raised = make([failure, 200], decide, keys)
        assert len(seen) == 2 and raised is None
        assert keys[0] and keys[0] == keys[1]
        again: list[str | None] = []
        make([200], decide, again)
        assert again[0] and again[0] != keys[0]


def test_a_still_running_answer_is_asked_again_and_other_conflicts_are_not() -> None:
    still = httpx.Response(409, json={"error": {"code": "conflict", "message": "running",
                                                "field": "Idempotency-Key"}})
    other = httpx.Response(409, json={"error": {"code": "conflict", "message": "exists",
                                                "field": "name"}})
    for first, sends in ((still, 2), (other, 1)):
        answers = [first, httpx.Response(200, json=DECISION)]
        seen: list[int] = []

        def handle(request: httpx.Request, answers: list[httpx.Response] = answers,
                   seen: list[int] = seen) -> httpx.Response:
            seen.append(1)
            return answers.pop(0)

        with PersonifyClient("http://x", "k", backoff=0.0,
                             transport=httpx.MockTransport(handle)) as client, \
                contextlib.suppress(Conflict):
            decide(client)
        assert len(seen) == sends


def test_reads_sent_by_post_carry_no_key_and_writes_do() -> None:
    from personify.client._calls import Endpoints

    keyed = {name for name, value in vars(Endpoints).items()
             if getattr(value, "keyed", False)}
    assert {"recommend", "rerank", "recommend_session", "preview_template", "create_key"
            }.isdisjoint(keyed)
    assert {"decide", "record_consent", "send_events", "create_experiment",
            "request_introduction", "patch_user"} <= keyed


@pytest.mark.parametrize("failure", [httpx.ReadError, httpx.ConnectError, 429, 503, 502])
def test_an_idempotent_call_is_repeated_after_any_passing_failure(failure: Any) -> None:
    for make in (_sync, _async):
        seen, raised = make([failure, failure, 200], health)
        assert len(seen) == 3 and raised is None


def _sync(steps: list[Any], call: Callable[[Any], Any],
          keys: list[str | None] | None = None) -> tuple[list[str], Any]:
    transport, seen = script(*steps, keys=keys)
    with PersonifyClient("http://x", "k", retries=3, backoff=0.0, transport=transport) as client:
        try:
            call(client)
        except Exception as error:
            return seen, type(error)
    return seen, None


def _async(steps: list[Any], call: Callable[[Any], Any],
           keys: list[str | None] | None = None) -> tuple[list[str], Any]:
    transport, seen = script(*steps, keys=keys)

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
