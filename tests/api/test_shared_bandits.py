"""Bandit learning shared by several API processes on one database (SQLite file, PostgreSQL):
rewards ingested by either process, and windows closed by either, reach both policies exactly
once, so both rank the same way; a restarted process loads the same state."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from personify.api import create_app
from personify.domain.keys import Scope
from personify.settings import Settings
from personify.storage.registry import open_stores
from personify.storage.sql.experiments import SqlDecisionPointStore

WINDOW_S = 3.0
ACTIONS = [{"id": "a"}, {"id": "b"}, {"id": "c"}]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'shared.db'}"


@pytest.fixture
def keys(shared_url: str) -> dict[str, dict[str, str]]:
    with open_stores(shared_url) as stores:
        return {
            scope: {
                "Authorization": f"Bearer {stores.keys.create('default', scope, [Scope(scope)])[1]}"
            }
            for scope in ("admin", "ingest", "serve")
        }


def _app(url: str, tmp_path: Path) -> FastAPI:
    return create_app(
        Settings(database_url=url, model_dir=str(tmp_path / "models"), demo=False)
    )


@pytest.fixture
def two(shared_url: str, tmp_path: Path, keys: Any) -> Iterator[tuple[TestClient, TestClient]]:
    with TestClient(_app(shared_url, tmp_path)) as one, TestClient(
        _app(shared_url, tmp_path)
    ) as other:
        yield one, other


def _points(client: TestClient) -> Any:
    return client.app.state.runtime.experiments.points  # type: ignore[attr-defined]


def _decide(client: TestClient, keys: Any, device: str, k: int = 2) -> dict[str, Any]:
    body = {"point": "offers", "context": {"device": device}, "actions": ACTIONS, "k": k}
    got = client.post("/v1/decisions", json=body, headers=keys["serve"])
    assert got.status_code == 200, got.text
    return dict(got.json())


def _click(client: TestClient, keys: Any, decision: dict[str, Any], action: str, n: int) -> None:
    event = {
        "event_id": f"click-{decision['decision_id']}-{action}-{n}",
        "type": "click",
        "anonymous_id": "visitor",
        "item_id": action,
        "recommendation_id": decision["decision_id"],
        "timestamp": datetime.now(UTC).isoformat(),
    }
    got = client.post("/v1/events", json=event, headers=keys["ingest"])
    assert got.status_code == 200, got.text


def test_two_processes_converge_on_one_policy(
    two: tuple[TestClient, TestClient], keys: Any, shared_url: str, tmp_path: Path
) -> None:
    one, other = two
    for client in two:  # compact often, and at once: the reload path runs too
        _points(client).snapshot_every = 5
        _points(client).settle = timedelta(0)
    config = {"policy": "linucb", "alpha": 0.0, "epsilon": 0.0, "dim": 16,
              "reward_window_seconds": WINDOW_S}
    configured = one.post("/v1/decisions/offers", json=config, headers=keys["admin"])
    assert configured.status_code == 200, configured.text
    made: list[tuple[TestClient, dict[str, Any]]] = []
    for i in range(6):
        for client in two:
            made.append((client, _decide(client, keys, "mobile" if i % 2 else "web", k=3)))
    # each process ingests the clicks on the *other* process's decisions: "b" on mobile, "c"
    # on web; one click arrives at both processes and must count once
    clicked = 0
    for n, (maker, decision) in enumerate(made):
        chosen = [a["id"] for a in decision["actions"]]
        target = "b" if n % 4 in (2, 3) else "c"
        if target in chosen:
            _click(other if maker is one else one, keys, decision, target, 0)
            clicked += 1
    maker, first = made[0]
    first_chosen = [a["id"] for a in first["actions"]]
    _click(maker, keys, first, first_chosen[0], 1)
    _click(one if maker is other else other, keys, first, first_chosen[0], 2)
    time.sleep(WINDOW_S + 0.3)
    for client in two:  # a decision closes the expired windows of that process
        _decide(client, keys, "tablet")
    states = [client.get("/v1/decisions/offers", headers=keys["admin"]).json() for client in two]
    assert clicked == 12
    # 12 decisions x 3 chosen actions: every one updated exactly once (reward or 0), in both
    assert [s["updates"] for s in states] == [36, 36]
    assert states[0]["actions_learned"] == states[1]["actions_learned"] == ["a", "b", "c"]
    for device in ("mobile", "web"):
        ranked = [_decide(client, keys, device, k=3)["actions"] for client in two]
        assert [a["id"] for a in ranked[0]] == [a["id"] for a in ranked[1]]
        assert [a["score"] for a in ranked[0]] == pytest.approx(
            [a["score"] for a in ranked[1]], abs=1e-9
        )
        assert ranked[0][0]["id"] == ("b" if device == "mobile" else "c")
        assert ranked[0][0]["score"] > 0
    # the learned state was compacted into a snapshot on the point
    with open_stores(shared_url) as stores:
        assert stores.database is not None
        record = SqlDecisionPointStore(stores.database).get("default", "offers")
    assert record is not None and record.state_seq is not None and record.state_seq > 0
    assert record.state is not None and record.state["updates"] >= 5
    # a third process (a restart) loads snapshot + newer log rows: the same policy
    with TestClient(_app(shared_url, tmp_path)) as third:
        assert third.get("/v1/decisions/offers", headers=keys["admin"]).json()["updates"] == 36
        fresh = _decide(third, keys, "mobile", k=3)["actions"]
        again = _decide(one, keys, "mobile", k=3)["actions"]
        assert [a["score"] for a in fresh] == pytest.approx([a["score"] for a in again], abs=1e-9)


def test_a_new_configuration_reaches_the_other_process(
    two: tuple[TestClient, TestClient], keys: Any
) -> None:
    one, other = two
    config = {"policy": "linucb", "alpha": 0.0, "epsilon": 0.0, "dim": 16,
              "reward_window_seconds": 60}
    one.post("/v1/decisions/offers", json=config, headers=keys["admin"])
    decision = _decide(other, keys, "web")
    _click(one, keys, decision, decision["actions"][1]["id"], 0)
    assert other.get("/v1/decisions/offers", headers=keys["admin"]).json()["updates"] == 1
    fresh = {**config, "policy": "bernoulli_thompson"}
    one.post("/v1/decisions/offers", json=fresh, headers=keys["admin"])
    state = other.get("/v1/decisions/offers", headers=keys["admin"]).json()
    assert state["config"]["policy"] == "bernoulli_thompson"
    assert state["updates"] == 0 and state["open_decisions"] == 0
