"""The experiment-port contract suite over the memory adapters, a SQLite file and PostgreSQL,
plus the SQL-only stores (decision points, paged decision scans) and the 0002 migration."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from personify.experiments.bandits import DecisionLog, LinUCB
from personify.storage.registry import Stores, open_stores
from personify.storage.sql.experiments import SqlDecisionLogStore, SqlDecisionPointStore
from personify.storage.sql.migrate import alembic_config, engine_revision, head_revision
from personify.testing import experiment_contracts as contracts


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """Freshly migrated SQL stores of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'exp.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    with open_stores(url) as stores:
        yield stores


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def experiment_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[contracts.ExperimentBackend]:
    if request.param == "memory":
        yield contracts.memory_backend()
        return
    url = (
        f"sqlite:///{tmp_path / 'exp.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    stores = open_stores(url)
    assert stores.database is not None
    yield contracts.sql_backend(stores.database)
    stores.close()


class TestExperimentStore(contracts.ExperimentStoreContract):
    pass


class TestExposureLog(contracts.ExposureLogContract):
    pass


class TestDecisionLogStore(contracts.DecisionLogStoreContract):
    pass


class TestAliasMap(contracts.AliasMapContract):
    pass


class TestExperimentService(contracts.ExperimentServiceContract):
    pass


def test_decision_scan_pages_through_every_row_in_time_order(sql_stores: Stores) -> None:
    assert sql_stores.database is not None
    store = SqlDecisionLogStore(sql_stores.database, DecisionLog.from_dict)
    same_time = contracts.decision("dec-x", at=3)
    for i in range(7):
        store.record("t", contracts.decision(f"dec-{i}", at=i))
    store.record("t", same_time)  # ties on the timestamp are paged by id
    got = [d.decision_id for d in store.scan("t", batch_size=2)]
    assert got == ["dec-0", "dec-1", "dec-2", "dec-3", "dec-x", "dec-4", "dec-5", "dec-6"]
    since = contracts.T0 + timedelta(seconds=5)
    assert [d.decision_id for d in store.scan("t", since=since, batch_size=1)] == [
        "dec-5",
        "dec-6",
    ]


def test_decision_points_keep_config_and_learned_state(sql_stores: Stores) -> None:
    assert sql_stores.database is not None
    points = SqlDecisionPointStore(sql_stores.database)
    policy = LinUCB(4, alpha=0.5)
    policy.update("a", [1, 0, 0, 1], 1.0)
    points.save_config("t", "home-offer", {"policy": "linucb", "alpha": 0.5})
    assert points.save_state("t", "home-offer", policy.to_dict()) is True
    assert points.save_state("t", "missing", policy.to_dict()) is False
    got = points.get("t", "home-offer")
    assert got is not None and got.config == {"policy": "linucb", "alpha": 0.5}
    assert got.state == policy.to_dict()
    assert points.get("other-tenant", "home-offer") is None
    points.save_config("t", "home-offer", {"policy": "linucb", "alpha": 2.0})
    reset = points.get("t", "home-offer")
    assert reset is not None and reset.state is None and reset.config["alpha"] == 2.0
    assert [p.point for p in points.list("t")] == ["home-offer"]
    assert points.delete("t", "home-offer") and points.get("t", "home-offer") is None


def test_experiments_migration_downgrades_and_upgrades(sql_stores: Stores) -> None:
    from alembic import command

    assert sql_stores.database is not None
    engine = sql_stores.database.engine
    assert engine_revision(engine) == head_revision()
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    assert engine_revision(engine) == "0001"
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    assert engine_revision(engine) == head_revision()
