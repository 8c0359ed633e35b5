"""BatchGate decides as ProcessingGate does, with bulk reads instead of per-subject ones."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from personify.domain.consents import ConsentState
from personify.domain.events import Event
from personify.domain.users import User
from personify.privacy.consent import ConsentDefaults, ConsentPolicy
from personify.privacy.processing import ProcessingGate
from personify.runtime.online_gate import BatchGate
from personify.storage.registry import Stores, open_stores

T = "default"
NOW = datetime(2026, 11, 27, 10, tzinfo=UTC)


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Stores]:
    with open_stores(f"sqlite:///{tmp_path / 'gate.db'}") as opened:
        yield opened


def _event(n: int, *, user: str | None = None, anonymous: str | None = None) -> Event:
    return Event(event_id=f"e{n}", type="view", item_id="i1", user_id=user,
                 anonymous_id=anonymous, timestamp=NOW)


def _population(stores: Stores, policy: ConsentPolicy) -> list[Event]:
    """Every branch of ``may_profile``: granted, withdrawn, expired, restricted, erased, linked
    and unlinked anonymous ids, unknown users."""
    stores.users.upsert(T, [
        User(user_id="granted"), User(user_id="restricted", restricted=True),
        User(user_id="owner", anonymous_ids=["a-linked"]),
        User(user_id="strict-owner", anonymous_ids=["a-strict"], restricted=True),
        User(user_id="erased-owner", anonymous_ids=["a-erased-owner"]),
    ])
    for person in ("granted", "restricted", "owner", "strict-owner", "erased", "erased-owner",
                   "anon:a-own", "withdrawn", "expired"):
        policy.record(T, person, "profiling", ConsentState.GRANTED)
    policy.record(T, "withdrawn", "profiling", ConsentState.WITHDRAWN)
    policy.record(T, "expired", "profiling", ConsentState.GRANTED,
                  expires_at=datetime.now(UTC) - timedelta(seconds=1))
    for erased in ("erased", "erased-owner", "anon:a-erased"):
        stores.erasures.record(T, stores.erasures.user_id_hash(T, erased), NOW, f"r-{erased}")
    users = ["granted", "restricted", "owner", "strict-owner", "erased", "withdrawn", "expired",
             "nobody", "granted"]
    anonymous = ["a-linked", "a-strict", "a-erased-owner", "a-own", "a-none", "a-erased"]
    events = [_event(i, user=u) for i, u in enumerate(users)]
    events += [_event(100 + i, anonymous=a) for i, a in enumerate(anonymous)]
    events.append(_event(200, user="granted", anonymous="a-none"))
    return events


@pytest.mark.parametrize("regime", ["opt-in", "opt-out"])
def test_batch_decisions_equal_the_gates_own(stores: Stores, regime: str) -> None:
    policy = ConsentPolicy(stores.consents, ConsentDefaults.parse({"profiling": regime}))
    gate = ProcessingGate(policy, stores.users, stores.erasures.is_erased)
    events = _population(stores, policy)
    batch = BatchGate(gate, stores.users, stores.consents, stores.erasures)

    expected = [e.event_id for e in gate.admit(T, events)]
    got = [e.event_id for e in batch.admit(T, events)]

    assert got == expected
    admitted = {e.user_id or e.anonymous_id for e in batch.admit(T, events)}
    assert {"granted", "owner", "a-linked", "a-own"} <= admitted
    assert not admitted & {"restricted", "erased", "withdrawn", "a-strict", "a-erased-owner",
                           "a-erased"}
    assert ("nobody" in admitted) == (regime == "opt-out")


def test_without_bulk_reads_the_gate_itself_answers(stores: Stores) -> None:
    class OneByOne:
        """A user store without the bulk reads."""

        def get(self, tenant: str, user_id: str) -> User | None:
            return stores.users.get(tenant, user_id)

        def get_by_anonymous(self, tenant: str, anonymous_id: str) -> User | None:
            return stores.users.get_by_anonymous(tenant, anonymous_id)

    policy = ConsentPolicy(stores.consents, ConsentDefaults.parse({"profiling": "opt-out"}))
    stores.users.upsert(T, [User(user_id="restricted", restricted=True)])
    gate = ProcessingGate(policy, OneByOne(), stores.erasures.is_erased)  # type: ignore[arg-type]
    batch = BatchGate(gate, OneByOne(), stores.consents, stores.erasures)  # type: ignore[arg-type]

    admitted = batch.admit(T, [_event(1, user="restricted"), _event(2, user="free")])

    assert [e.event_id for e in admitted] == ["e2"]
    assert batch.admit(T, []) == []


def test_bulk_reads_match_the_single_reads(stores: Stores) -> None:
    stores.users.upsert(T, [User(user_id=f"u{i}", anonymous_ids=[f"a{i}"]) for i in range(3)])
    policy = ConsentPolicy(stores.consents)
    policy.record(T, "u1", "profiling", ConsentState.GRANTED)
    policy.record(T, "u1", "email_marketing", ConsentState.DENIED)
    many_ids = [f"u{i}" for i in range(1200)]  # more ids than one IN list holds

    users = stores.users.get_many(T, many_ids)  # type: ignore[attr-defined]
    owners = stores.users.get_many_by_anonymous(T, ["a0", "a2", "zz"])  # type: ignore[attr-defined]
    current = stores.consents.current_many(T, many_ids)  # type: ignore[attr-defined]

    assert users == {f"u{i}": stores.users.get(T, f"u{i}") for i in range(3)}
    assert {a: u.user_id for a, u in owners.items()} == {"a0": "u0", "a2": "u2"}
    assert current == {"u1": stores.consents.current(T, "u1")}
    assert set(current["u1"]) == {"profiling", "email_marketing"}
