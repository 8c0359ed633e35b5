"""The messaging definitions adapter over ``memory://``, a SQLite file and PostgreSQL, and the
``0004_messaging`` migration (down and up again)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from personify.storage.registry import Stores, open_stores
from personify.storage.sql.messaging_definitions import SqlMessagingDefinitions
from personify.storage.sql.migrate import alembic_config, engine_revision, head_revision


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'msg.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    with open_stores(url) as opened:
        yield opened


@pytest.fixture
def definitions(stores: Stores) -> SqlMessagingDefinitions:
    assert stores.database is not None
    clock = [datetime(2026, 3, 1, tzinfo=UTC)]

    def tick() -> datetime:
        clock[0] += timedelta(seconds=1)
        return clock[0]

    return SqlMessagingDefinitions(stores.database, clock=tick)


def test_put_get_replace_and_delete(definitions: SqlMessagingDefinitions) -> None:
    body = {"name": "welcome", "steps": [{"duration": "4h"}], "ru": "Привет", "n": 1.5}
    first = definitions.put("t1", "journey", "welcome", body, enabled=False)
    stored = definitions.get("t1", "journey", "welcome")
    assert stored is not None and stored.body == body and stored.enabled is False
    assert stored.updated_at == first.updated_at
    definitions.put("t1", "journey", "welcome", {**body, "n": 2}, enabled=True)
    replaced = definitions.get("t1", "journey", "welcome")
    assert replaced is not None and replaced.body["n"] == 2 and replaced.enabled
    assert replaced.updated_at > first.updated_at
    assert definitions.get("t1", "template", "welcome") is None  # kinds are separate
    assert definitions.delete("t1", "journey", "welcome")
    assert not definitions.delete("t1", "journey", "welcome")
    assert definitions.get("t1", "journey", "welcome") is None


def test_list_enable_and_tenants_are_per_tenant(definitions: SqlMessagingDefinitions) -> None:
    for tenant, name, enabled in [("t1", "b", True), ("t1", "a", False), ("t2", "a", True)]:
        definitions.put(tenant, "journey", name, {"name": name, "tenant": tenant},
                        enabled=enabled)
    definitions.put("t3", "template", "x", {"name": "x"}, enabled=True)
    assert [d.name for d in definitions.list("t1", "journey")] == ["a", "b"]
    assert [d.name for d in definitions.list("t1", "journey", enabled_only=True)] == ["b"]
    assert [d.body["tenant"] for d in definitions.list("t2", "journey")] == ["t2"]
    assert definitions.tenants("journey") == ["t1", "t2"]
    assert definitions.set_enabled("t1", "journey", "b", False)
    assert not definitions.set_enabled("t1", "journey", "missing", True)
    assert definitions.tenants("journey") == ["t2"]
    assert definitions.tenants("journey", enabled_only=False) == ["t1", "t2"]


def test_messaging_migration_downgrades_and_upgrades(stores: Stores) -> None:
    from alembic import command

    assert stores.database is not None
    engine = stores.database.engine
    assert engine_revision(engine) == head_revision()
    table = "personify_messaging_definitions"
    assert sa.inspect(engine).has_table(table)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0004_messaging-1")
    assert not sa.inspect(engine).has_table(table)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    assert engine_revision(engine) == head_revision()
    definitions = SqlMessagingDefinitions(stores.database)
    definitions.put("t", "campaign", "c", {"name": "c"}, enabled=True)
    assert definitions.get("t", "campaign", "c") is not None
