"""``personify networking train | people``: the model is learned from consenting people's person
-> person events and used by the people list."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import Result

from personify.domain.consents import ConsentRecord, ConsentState
from personify.domain.events import Event
from personify.storage.registry import open_stores

Personify = Callable[..., Result]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_train_then_people(personify: Personify, database_url: str, tmp_path: Path) -> None:
    few = personify("networking", "train")
    assert few.exit_code == 2 and "events" in few.output
    rng = random.Random(0)
    stores = open_stores(database_url)
    try:
        for p in range(30):
            for purpose in ("profiling", "personalization"):
                stores.consents.append("default", ConsentRecord(
                    user_id=f"p{p}", purpose=purpose, state=ConsentState.GRANTED))
        events = []
        for k in range(400):
            a, b = rng.sample(range(30), 2)
            if rng.random() < 0.7:  # the first ten people are the busy ones
                b = rng.randrange(10)
                a = a if a != b else (b + 1) % 30
            events.append(Event(
                event_id=f"e{k}", type="reply", user_id=f"p{a}", timestamp=T0 + timedelta(hours=k),
                properties={"person_id": f"p{b}", "topics": [f"t{b % 3}"]}))
        # connection requests answered late in the history: explicit labels
        for k in range(12):
            a, b = f"p{10 + k}", f"p{k % 10}"
            at = T0 + timedelta(hours=395 + k / 4)
            events.append(Event(event_id=f"r{k}", type="connection_request", user_id=a,
                                timestamp=at, properties={"person_id": b}))
            events.append(Event(
                event_id=f"d{k}", type="connection_accept" if k % 3 else "connection_decline",
                user_id=b, timestamp=at + timedelta(minutes=5), properties={"person_id": a}))
        stores.events.append("default", events)
    finally:
        stores.close()
    result = personify("networking", "train")
    assert result.exit_code == 0, result.output
    assert "420 interactions" in result.output  # replies, requests and accepts
    model = json.loads((tmp_path / "models" / "networking" / "default.json").read_text())
    assert model["validation"]["decisions"] == 12
    assert model["validation"]["decisions_accepted"] == 8
    assert "explicit labels: 12" in result.output
    assert len(model["weights"]) == len(model["features"])
    share = model["combination"]["forward_share"]
    assert 0.25 <= share <= 0.75 and f"interest_forward^{share:g}" in result.output
    proposed = personify("networking", "propose", "p12", "--n", "2")
    assert proposed.exit_code == 0, proposed.output
    lines = [json.loads(line) for line in proposed.output.splitlines()]
    assert len(lines) == 2 and all(v["source"] == "system" for v in lines)
    again = personify("networking", "propose", "p12", "--n", "2")
    assert [json.loads(x)["introduction_id"] for x in again.output.splitlines()] == [
        v["introduction_id"] for v in lines]
    shown = personify("networking", "people", "p12", "--n", "5")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["model"] == "trained" and len(data["people"]) == 5
    assert all(p["person_id"] != "p12" for p in data["people"])


def test_feed_command(personify: Personify, database_url: str) -> None:
    """``personify networking feed``: the same ranked, explained entries as the API."""
    from personify.domain.items import Item
    from personify.domain.users import Profile, User

    now = datetime.now(UTC)  # the CLI reads the (possibly moved) clock of this process
    stores = open_stores(database_url)
    try:
        stores.users.upsert("default", [User(user_id="me", profile=Profile(
            skills=["qiskit"], time_zone="UTC"))])
        stores.consents.append("default", ConsentRecord(
            user_id="me", purpose="personalization", state=ConsentState.GRANTED))
        stores.catalog.upsert("default", [
            Item(item_id="meetup", type="event", title="Qiskit meet-up", tags=["qiskit"],
                 properties={"starts_at": (now + timedelta(days=2)).isoformat(),
                             "capacity": 5}),
            Item(item_id="gone", type="event", title="Past", tags=["qiskit"],
                 properties={"starts_at": (now - timedelta(days=2)).isoformat()}),
            Item(item_id="qgroup", type="group", title="Qiskit users", tags=["qiskit"]),
        ])
    finally:
        stores.close()
    result = personify("networking", "feed", "me", "--shares", "events:1,groups:1")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [e["id"] for e in data["entries"]] in (["meetup", "qgroup"], ["qgroup", "meetup"])
    assert all(e["reasons"] for e in data["entries"])
    bad = personify("networking", "feed", "me", "--shares", "planets:1")
    assert bad.exit_code == 2 and "shares" in bad.output
