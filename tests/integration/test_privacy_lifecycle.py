"""The privacy lifecycle as a Hypothesis state machine: create, ingest, consent changes,
recommend-time checks, export, erase, replay old events — on memory:// and a SQLite file; one
run on PostgreSQL + Redis; and a log capture proving no personal data reaches the logs.

Invariants: an export holds every stored record of the person and nothing of anyone else; after
erasure their events are gone from every store, replays are refused, the shared popularity
and co-occurrence counters equal a fresh online state built as if they had never existed, no
file of any model version (promoted, older, never promoted) holds their row key, id or per-person
list, and (on Redis) no key name carries their id.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from personify.domain.consents import ConsentState
from personify.domain.errors import InvalidInput
from personify.domain.events import Event
from personify.domain.users import Profile, User
from personify.ingestion import EventIngestor
from personify.jobs.training import TrainingConfig, train_tenant
from personify.privacy.export import export_person
from personify.privacy.model_influence import load_influence
from personify.privacy.pseudonyms import tombstone_key
from personify.privacy.runtime import PrivacyRuntime, open_runtime
from personify.serving.model_registry import BundleRegistry
from personify.storage.model_files import load_artifact
from personify.storage.online import MemoryOnlineState, OnlineState, open_online_state
from personify.storage.person_cache import (
    CachedConsentStore,
    CachedUserStore,
    PersonCache,
    RedisGenerations,
)
from personify.storage.registry import Stores, open_stores

T = "default"
USERS = [f"u{i}" for i in range(4)]
ITEMS = [f"i{i}" for i in range(6)]
START = datetime(2025, 3, 1, tzinfo=UTC)
NOW = START + timedelta(days=1)
TRAINING = TrainingConfig(learn_blend=False, train_ranker=False, user_model="itemknn",
                          user_params={})
"""Per-person lists included (they hold plain ids), from a model fast enough for every step."""


class Lifecycle(RuleBasedStateMachine):
    """One engine: stores, online state, ingestion gated by profiling consent, erasure."""

    open_backends: Callable[[], tuple[Stores, OnlineState]] = staticmethod(  # type: ignore[assignment]
        lambda: (open_stores("memory://"), MemoryOnlineState())
    )

    @initialize(profiling=st.sampled_from(["opt-in", "opt-out"]))
    def start(self, profiling: str) -> None:
        self.stores, self.state = self.open_backends()
        client = getattr(self.state, "client", None)
        if client is not None:  # several processes on one Redis: the person cache's counters
            people = PersonCache(RedisGenerations(client, self.state.prefix,  # type: ignore[attr-defined]
                                                  getattr(self.state, "subject", None)))
            self.stores.users = CachedUserStore(self.stores.users, people)
            self.stores.consents = CachedConsentStore(self.stores.consents, people)
        # opt-out: people without a consent record are trained on (and so in every version)
        self.privacy: PrivacyRuntime = open_runtime(
            self.stores, pseudonym_secret=b"k" * 32, consent_defaults={"profiling": profiling}
        )
        self.ingestor = EventIngestor(self.stores.events, is_erased=self.stores.erasures.is_erased)
        self.ingestor.add_listener(self._apply)
        self.model_dir = tempfile.TemporaryDirectory(prefix="lifecycle-models-")
        self.models = self.privacy.model_store(self.model_dir.name)
        self.bundles = BundleRegistry(self.models)
        self.erasure = self.privacy.erasure(
            state=self.state,
            forget_model=lambda tenant, keys: self.models.forget(self.bundles, tenant, keys),
        )
        self.stored: dict[str, list[Event]] = {u: [] for u in USERS}
        self.applied: list[Event] = []
        self.erased: set[str] = set()
        self.clock = 0

    def teardown(self) -> None:
        if hasattr(self, "stores"):
            self.state.close()
            self.stores.close()
            self.model_dir.cleanup()

    def _apply(self, tenant: str, events: Sequence[Event]) -> None:
        admitted = self.privacy.gate.admit(tenant, events)
        self.state.apply(tenant, admitted, now=NOW)
        self.applied.extend(admitted)

    @rule(user=st.sampled_from(USERS))
    def create(self, user: str) -> None:
        if user in self.erased:
            return
        self.stores.users.upsert(T, [User(user_id=user, profile=Profile(
            email=f"{user}@mail.example", name=f"Name {user}"))])

    @rule(user=st.sampled_from(USERS), items=st.lists(st.sampled_from(ITEMS), min_size=1,
                                                        max_size=4))
    def ingest(self, user: str, items: list[str]) -> None:
        events = []
        for item in items:
            self.clock += 1
            events.append(Event(event_id=f"{user}-{self.clock}", type="view", user_id=user,
                                item_id=item, timestamp=START + timedelta(minutes=self.clock)))
        result = self.ingestor.ingest(T, events)
        if user in self.erased:
            assert not result.stored, "an erased person was re-created"
        else:
            self.stored[user].extend(events)

    @rule(user=st.sampled_from(USERS), purpose=st.sampled_from(["profiling", "personalization"]),
          state=st.sampled_from(list(ConsentState)))
    def consent(self, user: str, purpose: str, state: ConsentState) -> None:
        if user not in self.erased:
            self.privacy.policy.record(T, user, purpose, state)
            allowed = self.privacy.policy.allows(T, user, purpose)
            assert allowed is (state == ConsentState.GRANTED), "not effective at once"

    @rule(promote=st.booleans())
    def train(self, promote: bool) -> None:
        """A model version (promoted or kept for later) built with the privacy gate."""
        # InvalidInput: nobody consented to profiling yet, nothing to train on
        with contextlib.suppress(InvalidInput):
            train_tenant(self.stores.events, self.models, T, TRAINING, promote=promote,
                         privacy=self.privacy.training())

    @rule(user=st.sampled_from(USERS))
    def export(self, user: str) -> None:
        data = export_person(self.privacy.export_sources(self.state), T, user)
        ids = {e["event_id"] for e in data["events"]}
        assert ids == {e.event_id for e in self.stored[user]}
        others = [u for u in USERS if u != user]
        text = str(data)
        assert not any(f"{o}@mail" in text or f"'{o}-" in text for o in others)
        assert all(c["user_id"] == user for c in data["consents"])

    @rule(user=st.sampled_from(USERS))
    def erase(self, user: str) -> None:
        result = self.erasure.erase_user(T, user)
        assert result.events_deleted == len(self.stored[user])
        self.erased.add(user)
        self.stored[user] = []
        self.applied = [e for e in self.applied if e.user_id != user]

    @rule(user=st.sampled_from(USERS))
    def replay(self, user: str) -> None:
        if user not in self.erased:
            return
        old = Event(event_id=f"{user}-1", type="view", user_id=user, item_id=ITEMS[0],
                    timestamp=START)
        assert not self.ingestor.ingest(T, [old]).stored

    @invariant()
    def erased_people_are_gone(self) -> None:
        if not hasattr(self, "stores"):
            return
        scanned = {e.user_id for e in self.stores.events.scan(T)}
        for user in self.erased:
            assert user not in scanned
            assert self.stores.users.get(T, user) is None
            assert self.stores.consents.history(T, user) == []
            assert self.state.user_state(T, user, now=NOW).recent == []

    @invariant()
    def no_model_version_holds_an_erased_person(self) -> None:
        if not hasattr(self, "stores"):
            return
        for user in self.erased:
            row_key = tombstone_key(self.stores.erasures.user_id_hash(T, user))
            for manifest in self.models.list(T):
                directory = Path(self.models.root) / T / manifest.version
                for path in directory.iterdir():
                    assert row_key.encode() not in path.read_bytes(), (user, path)
                index = load_influence(directory)
                assert index is None or row_key not in index.keys, (user, manifest.version)
                bundle = load_artifact(directory / "artifact.pkl")
                lists = getattr(bundle, "user_lists", None)
                assert lists is None or lists.users.get(user) < 0, (user, manifest.version)
                assert f"'{user}'" not in repr(getattr(bundle, "parts", None))

    @invariant()
    def no_redis_key_names_an_erased_person(self) -> None:
        client = getattr(getattr(self, "state", None), "client", None)
        if client is None:
            return
        prefix = self.state.prefix  # type: ignore[attr-defined]
        names = [k.decode() for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        for user in self.erased:
            assert not [n for n in names if user in n.split(":")], user
        members = {m.decode() for m in client.zrange(f"{prefix}:{T}:active", 0, -1)}
        assert not members & set(USERS), "the active set names people by a keyed hash only"

    @invariant()
    def shared_counters_equal_a_fresh_state_without_the_erased(self) -> None:
        if not hasattr(self, "stores"):
            return
        fresh = MemoryOnlineState()
        fresh.apply(T, self.applied, now=NOW)
        got = self.state.item_popularity(T, ITEMS, now=NOW)
        want = fresh.item_popularity(T, ITEMS, now=NOW)
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9)
        for item in ITEMS:
            assert dict(self.state.neighbours(T, item, 10)) == dict(fresh.neighbours(T, item, 10))


RUN = settings(max_examples=20, stateful_step_count=15, deadline=None,
               suppress_health_check=[HealthCheck.too_slow])


def test_lifecycle_on_memory() -> None:
    run_state_machine_as_test(Lifecycle, settings=RUN)


def test_lifecycle_on_sqlite_file(tmp_path: Path) -> None:
    counter = iter(range(10_000))

    class OnSqlite(Lifecycle):
        open_backends = staticmethod(  # type: ignore[assignment]
            lambda: (open_stores(f"sqlite:///{tmp_path}/p{next(counter)}.db"), MemoryOnlineState())
        )

    run_state_machine_as_test(OnSqlite, settings=settings(RUN, max_examples=10))


@pytest.mark.postgres
@pytest.mark.redis
def test_lifecycle_on_postgres_and_redis(
    postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    counter = iter(range(10_000))

    class OnServices(Lifecycle):
        open_backends = staticmethod(  # type: ignore[assignment]
            lambda: (open_stores(postgres_url),
                     open_online_state(redis_url, f"{redis_prefix}:{next(counter)}"))
        )

        def teardown(self) -> None:
            if hasattr(self, "stores"):
                assert self.stores.database is not None
                with self.stores.database.write() as conn:
                    for table in ("personify_events", "personify_consents", "personify_users",
                                  "personify_erasures", "personify_preferences"):
                        conn.exec_driver_sql(f"DELETE FROM {table}")
            super().teardown()

    run_state_machine_as_test(OnServices, settings=settings(RUN, max_examples=6))


def test_personal_data_never_reaches_the_logs(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """A whole lifecycle through the API with every logger at DEBUG: no email, name or id."""
    import warnings

    from personify.api import create_app
    from personify.settings import Settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    secret = "s" * 32
    app = create_app(Settings(database_url="memory://", admin_key=secret,
                              model_dir=str(tmp_path), demo=False))
    h = {"Authorization": f"Bearer {secret}"}
    person: dict[str, Any] = {"user_id": "zelda-4711", "email": "zelda@private.example",
                              "name": "Zelda Privatova"}
    caplog.set_level(logging.DEBUG)
    with TestClient(app) as client:
        client.put("/v1/items/i1", json={"title": "a"}, headers=h)
        client.put(f"/v1/users/{person['user_id']}",
                   json={"profile": {"email": person["email"], "name": person["name"]}}, headers=h)
        for purpose in ("personalization", "profiling"):
            client.post(f"/v1/users/{person['user_id']}/consents/{purpose}:grant", json={},
                        headers=h)
        client.post("/v1/events", headers=h, json={
            "event_id": "z1", "type": "view", "user_id": person["user_id"], "item_id": "i1",
            "timestamp": datetime.now(UTC).isoformat()})
        client.post("/v1/recommendations", json={"user_id": person["user_id"]}, headers=h)
        client.get(f"/v1/users/{person['user_id']}/export", headers=h)
        assert client.delete(f"/v1/users/{person['user_id']}", headers=h).status_code == 200
        client.post("/v1/events", headers=h, json={
            "event_id": "z2", "type": "view", "user_id": person["user_id"], "item_id": "i1",
            "timestamp": datetime.now(UTC).isoformat()})
    # ``httpx`` is the test client's own request log (the caller's side, not the server's).
    from personify.runtime.logs import JsonFormatter, PlainFormatter

    records = [r for r in caplog.records if r.name != "httpx"]
    logged = "\n".join(r.getMessage() for r in records)
    assert "erased subject p_" in logged, "the capture saw the privacy logs"
    # the JSON lines and plain lines the server writes: the message and every extra field
    lines = "\n".join(f(r) for r in records
                      for f in (JsonFormatter().format, PlainFormatter().format))
    access = [r for r in records if r.name == "personify.access"]
    assert len(access) >= 9, "one access line per request"
    assert all(len(getattr(r, "request_id", "")) == 32 for r in access)
    assert "/v1/users/{user_id}" in {getattr(r, "route", None) for r in access}
    for value in person.values():
        assert value not in logged, f"{value!r} appeared in the logs"
        assert value not in lines, f"{value!r} appeared in a formatted log line"
