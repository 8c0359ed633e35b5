"""Contract tests of the experiment ports (pytest classes; subclass them to run).

Every adapter of ``ExperimentStore``, ``ExposureLog``, ``DecisionLogStore`` and the alias map of
sticky assignment passes the same suite. A test module provides one fixture::

    @pytest.fixture(params=["memory", "sqlite", "postgres"])
    def experiment_backend(request) -> Iterator[ExperimentBackend]: ...

    class TestExperimentStore(ExperimentStoreContract): ...

:func:`memory_backend` and :func:`sql_backend` build the two kinds of backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from personify.domain.errors import Conflict
from personify.domain.events import Event
from personify.experiments.assignment import assignment_unit
from personify.experiments.bandits import DecisionLog
from personify.experiments.definitions import Experiment, ExperimentStatus, parse_experiment
from personify.experiments.memory import (
    InMemoryDecisionLog,
    InMemoryExperimentStore,
    InMemoryExposureLog,
)
from personify.experiments.ports import (
    DecisionLogStore,
    ExperimentStore,
    ExposureLog,
    ExposureRecord,
)
from personify.experiments.service import (
    assign_unit,
    create_experiment,
    experiment_report,
    log_exposure,
    start_experiment,
    stop_experiment,
)
from personify.storage.sql.database import Database
from personify.storage.sql.experiments import (
    SqlAliasStore,
    SqlDecisionLogStore,
    SqlExperimentStore,
    SqlExposureLog,
)

A, B = "tenant-a", "tenant-b"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
CYRILLIC = "Персонализация 🚀 повышает CTR; '); DROP TABLE x;--"


@dataclass
class ExperimentBackend:
    """The three ports plus a factory of one tenant's alias map."""

    experiments: ExperimentStore
    exposures: ExposureLog
    decisions: DecisionLogStore
    aliases: Callable[[str], MutableMapping[str, str]]
    close: Callable[[], None] = field(default=lambda: None)


def memory_backend() -> ExperimentBackend:
    """The in-memory adapters; a plain dict per tenant is the in-memory alias map."""
    maps: dict[str, dict[str, str]] = {}
    return ExperimentBackend(
        InMemoryExperimentStore(),
        InMemoryExposureLog(),
        InMemoryDecisionLog(),
        lambda tenant: maps.setdefault(tenant, {}),
    )


def sql_backend(db: Database) -> ExperimentBackend:
    """The SQL adapters over an open (migrated) database."""
    aliases = SqlAliasStore(db)
    return ExperimentBackend(
        SqlExperimentStore(db, Experiment.model_validate),
        SqlExposureLog(db, ExposureRecord),
        SqlDecisionLogStore(db, DecisionLog.from_dict),
        aliases.for_tenant,
        db.dispose,
    )


def definition(name: str = "home-block", **fields: Any) -> Experiment:
    """A valid two-variant experiment with hostile text, nested payloads and aware datetimes."""
    body: dict[str, Any] = {
        "name": name,
        "hypothesis": CYRILLIC,
        "variants": [
            {"name": "control", "payload": {"personalized": False}},
            {"name": "ease", "weight": 2.5, "payload": {"model": "ease", "sources": ["a", "б"]}},
        ],
        "traffic": 0.25,
        "holdout": 0.05,
        "layer": "home",
        "targeting": {"countries": ["DE"], "channels": ["web"], "segments": ["returning"]},
        "primary_metric": {"name": "ctr", "kind": "ratio"},
        "guardrail_metrics": [{"name": "revenue", "kind": "mean", "higher_is_better": True}],
        "planned_sample_size": 1000,
        "end_at": datetime(2024, 4, 1, 9, 30, tzinfo=timezone(timedelta(hours=3))),
    }
    body.update(fields)
    return parse_experiment(body)


class ExperimentStoreContract:
    """Definitions by (tenant, name): lossless, replaceable, listed by layer and status."""

    def test_round_trip_is_lossless(self, experiment_backend: ExperimentBackend) -> None:
        exp = definition()
        experiment_backend.experiments.save(A, exp)
        got = experiment_backend.experiments.get(A, exp.name)
        assert got == exp
        assert got is not None and got.end_at is not None
        assert got.end_at.utcoffset() is not None
        assert got.end_at == datetime(2024, 4, 1, 6, 30, tzinfo=UTC)

    def test_unknown_name_is_none(self, experiment_backend: ExperimentBackend) -> None:
        assert experiment_backend.experiments.get(A, "nope") is None

    def test_save_replaces_and_mutating_a_result_changes_nothing(
        self, experiment_backend: ExperimentBackend
    ) -> None:
        store = experiment_backend.experiments
        store.save(A, definition())
        running = definition(status="running", bucket_range=(0, 2500), start_at=T0)
        store.save(A, running)
        got = store.get(A, "home-block")
        assert got is not None and got.status == ExperimentStatus.RUNNING
        assert got.bucket_range == (0, 2500)
        got.hypothesis = "changed"
        again = store.get(A, "home-block")
        assert again is not None and again.hypothesis == CYRILLIC
        assert len(store.list(A)) == 1

    def test_list_filters_by_layer_and_status_in_name_order(
        self, experiment_backend: ExperimentBackend
    ) -> None:
        store = experiment_backend.experiments
        store.save(A, definition("zeta"))
        store.save(A, definition("alpha", layer="email"))
        store.save(A, definition("mid", status="running", bucket_range=(0, 2500), start_at=T0))
        assert [e.name for e in store.list(A)] == ["alpha", "mid", "zeta"]
        assert [e.name for e in store.list(A, layer="home")] == ["mid", "zeta"]
        assert [e.name for e in store.list(A, status=ExperimentStatus.RUNNING)] == ["mid"]
        assert store.list(A, layer="email", status=ExperimentStatus.RUNNING) == []

    def test_tenants_are_isolated(self, experiment_backend: ExperimentBackend) -> None:
        store = experiment_backend.experiments
        store.save(A, definition())
        store.save(B, definition(hypothesis="other tenant"))
        got_a, got_b = store.get(A, "home-block"), store.get(B, "home-block")
        assert got_a is not None and got_a.hypothesis == CYRILLIC
        assert got_b is not None and got_b.hypothesis == "other tenant"
        assert store.list("tenant-c") == []


class ExposureLogContract:
    """The first exposure of a unit to an experiment counts; later ones are ignored."""

    def test_first_exposure_wins(self, experiment_backend: ExperimentBackend) -> None:
        log = experiment_backend.exposures
        first = ExposureRecord("exp", "control", "anon:v1", T0, "rec-1")
        assert log.record(A, first) is True
        assert log.record(A, ExposureRecord("exp", "ease", "anon:v1", T0 + timedelta(1))) is False
        assert log.exposures(A, "exp") == [first]

    def test_units_experiments_and_tenants_are_separate(
        self, experiment_backend: ExperimentBackend
    ) -> None:
        log = experiment_backend.exposures
        at = datetime(2024, 3, 1, 15, 0, 0, 123456, tzinfo=timezone(timedelta(hours=3)))
        records = [
            ExposureRecord("exp", "control", "anon:v1", at, None),
            ExposureRecord("exp", "ease", f"user:{CYRILLIC[:20]}", T0 + timedelta(hours=1)),
            ExposureRecord("other", "ease", "anon:v1", T0),
        ]
        assert all(log.record(A, r) for r in records)
        assert log.record(B, records[0]) is True
        got = sorted(log.exposures(A, "exp"), key=lambda r: r.unit)
        assert got == sorted(records[:2], key=lambda r: r.unit)
        assert got[0].timestamp == at and got[0].timestamp.utcoffset() is not None
        assert log.exposures(A, "other") == [records[2]]
        assert log.exposures(B, "exp") == [records[0]]
        assert log.exposures(A, "missing") == []


def decision(decision_id: str, *, policy: str = "linucb", at: int = 0) -> DecisionLog:
    """A decision ``at`` seconds after T0 with awkward floats."""
    return DecisionLog(
        decision_id,
        [1.0, 0.1 + 0.2, -3.5e-12, 1e300],
        ["a", "б", "🍵"],
        ["б", "a"],
        [0.9666666666666667, 1 / 3],
        policy,
        T0 + timedelta(seconds=at),
    )


class DecisionLogStoreContract:
    """Bandit decisions by (tenant, decision_id), lossless, scanned per policy."""

    def test_round_trip_is_lossless(self, experiment_backend: ExperimentBackend) -> None:
        store = experiment_backend.decisions
        d = decision("dec-1")
        store.record(A, d)
        got = store.get(A, "dec-1")
        assert got == d
        assert store.get(A, "dec-2") is None
        assert store.get(B, "dec-1") is None

    def test_scan_by_policy_and_tenant(self, experiment_backend: ExperimentBackend) -> None:
        store = experiment_backend.decisions
        for i in range(5):
            store.record(A, decision(f"dec-{i}", policy="linucb" if i % 2 else "ts", at=i))
        store.record(B, decision("dec-b", policy="linucb"))
        assert sorted(d.decision_id for d in store.scan(A)) == [f"dec-{i}" for i in range(5)]
        assert sorted(d.decision_id for d in store.scan(A, policy="linucb")) == ["dec-1", "dec-3"]
        assert [d.decision_id for d in store.scan(B)] == ["dec-b"]
        assert list(store.scan("tenant-c")) == []


class AliasMapContract:
    """The alias map keeps assignment sticky across login: the first unit key seen wins."""

    def test_sticky_across_login_and_devices(self, experiment_backend: ExperimentBackend) -> None:
        aliases = experiment_backend.aliases(A)
        before_login = assignment_unit(None, "phone-1", aliases)
        at_login = assignment_unit("u1", "phone-1", aliases)
        on_laptop = assignment_unit("u1", "laptop-7", aliases)
        logged_in_only = assignment_unit("u1", None, aliases)
        assert before_login == at_login == on_laptop == logged_in_only == "anon:phone-1"
        assert assignment_unit("u2", None, aliases) == "user:u2"
        assert dict(aliases) == {"u1": "anon:phone-1", "u2": "user:u2"}

    def test_setdefault_first_wins_and_tenants_are_separate(
        self, experiment_backend: ExperimentBackend
    ) -> None:
        a, b = experiment_backend.aliases(A), experiment_backend.aliases(B)
        assert a.setdefault(CYRILLIC[:30], "anon:x") == "anon:x"
        assert a.setdefault(CYRILLIC[:30], "anon:y") == "anon:x"
        assert CYRILLIC[:30] in a and CYRILLIC[:30] not in b
        assert len(a) == 1 and len(b) == 0
        b["u"] = "user:u"
        del b["u"]
        assert "u" not in b
        with pytest.raises(KeyError):
            _ = b["u"]


def _events(units: Iterable[tuple[str, bool]], start: datetime) -> list[Event]:
    out = []
    for i, (anon, clicked) in enumerate(units):
        ts = start + timedelta(minutes=i)
        out.append(
            Event(
                event_id=f"imp-{i}",
                type="impression",
                anonymous_id=anon,
                item_ids=["x"],
                recommendation_id=f"r{i}",
                timestamp=ts,
            )
        )
        if clicked:
            out.append(
                Event(
                    event_id=f"clk-{i}",
                    type="click",
                    anonymous_id=anon,
                    item_id="x",
                    recommendation_id=f"r{i}",
                    timestamp=ts + timedelta(seconds=5),
                )
            )
    return out


class ExperimentServiceContract:
    """The service functions run unchanged on the adapter: lifecycle, assignment, analysis."""

    def test_lifecycle_assignment_and_report(
        self, experiment_backend: ExperimentBackend, tmp_path: Path
    ) -> None:
        be = experiment_backend
        create_experiment(
            be.experiments,
            A,
            {
                "name": "blocks",
                "variants": [{"name": "control"}, {"name": "reco"}],
                "primary_metric": {"name": "ctr", "kind": "ratio"},
                "planned_sample_size": 100,
            },
        )
        with pytest.raises(Conflict):
            stop_experiment(be.experiments, A, "blocks")
        start_experiment(be.experiments, A, "blocks", now=T0)
        aliases = be.aliases(A)
        rng = np.random.default_rng(7)
        units: list[tuple[str, bool]] = []
        for i in range(300):
            (got,) = assign_unit(
                be.experiments, A, user_id=None, anonymous_id=f"v{i}", aliases=aliases
            )
            assert got.variant is not None
            log_exposure(be.exposures, A, got, timestamp=T0 + timedelta(minutes=i))
            p = 0.6 if got.variant == "reco" else 0.2
            units.append((f"v{i}", bool(rng.random() < p)))
        assert assign_unit(be.experiments, B, user_id="u", anonymous_id=None, aliases={}) == []
        result, files = experiment_report(
            be.experiments, be.exposures, A, "blocks", _events(units, T0), out_dir=tmp_path
        )
        assert sum(result.units.values()) == 300
        (ctr,) = result.for_metric("ctr")
        assert ctr.lift > 0.5 and ctr.p_value < 1e-6
        assert files["markdown"].exists()
        stopped = stop_experiment(be.experiments, A, "blocks")
        assert stopped.status == ExperimentStatus.STOPPED
        assert assign_unit(be.experiments, A, user_id=None, anonymous_id="v1", aliases={}) == []


ALL_CONTRACTS = (
    ExperimentStoreContract,
    ExposureLogContract,
    DecisionLogStoreContract,
    AliasMapContract,
    ExperimentServiceContract,
)
