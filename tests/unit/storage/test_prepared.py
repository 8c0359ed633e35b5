"""Prepared statements (``personify.storage.sql.prepared``): the same Core statement gives the
same rows and counts through the SQLite driver as through SQLAlchemy on PostgreSQL, with the
column types' conversions and the statement's own literal values applied."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from personify.storage.registry import open_database
from personify.storage.sql.database import Database
from personify.storage.sql.messaging_tables import msg_suppressions
from personify.storage.sql.prepared import Prepared

T = msg_suppressions
AT = datetime(2026, 12, 7, 22, 30, 15, 123456, tzinfo=UTC)
INSERT = Prepared(T.insert().values(
    tenant=sa.bindparam("p_tenant"), user_id=sa.bindparam("p_user"),
    channel=sa.bindparam("p_channel"), created_at=sa.bindparam("p_at"), reason="unsubscribed",
))
EXISTS = Prepared(sa.select(sa.literal(1)).where(
    T.c.tenant == sa.bindparam("p_tenant"), T.c.user_id == sa.bindparam("p_user"),
    T.c.channel.in_((sa.bindparam("p_channel"), "*")),
).limit(1))
MOVE = Prepared(T.update().where(T.c.tenant == sa.bindparam("p_tenant")).values(
    reason=sa.bindparam("p_reason")))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = (f"sqlite:///{tmp_path / 'p.db'}" if request.param == "sqlite"
           else str(request.getfixturevalue("postgres_url")))
    db = open_database(url)
    yield db
    db.dispose()


def test_writes_reads_and_counts_agree_with_the_table(database: Database) -> None:
    with database.prepared_write() as run:
        run.executemany(INSERT, [
            {"p_tenant": "t", "p_user": "ann", "p_channel": "email", "p_at": AT},
            {"p_tenant": "t", "p_user": "bob", "p_channel": "*", "p_at": AT},
        ])
    with database.prepared_read() as run:
        assert run.exists(EXISTS, {"p_tenant": "t", "p_user": "ann", "p_channel": "email"})
        assert not run.exists(EXISTS, {"p_tenant": "t", "p_user": "ann", "p_channel": "sms"})
        assert run.exists(EXISTS, {"p_tenant": "t", "p_user": "bob", "p_channel": "sms"})
    with database.prepared_write() as run:
        assert run.execute(MOVE, {"p_tenant": "t", "p_reason": "complaint"}) == 2
        assert run.execute(MOVE, {"p_tenant": "nobody", "p_reason": "x"}) == 0
    with database.read() as conn:  # read back through SQLAlchemy: the same values and types
        rows = conn.execute(sa.select(T.c.user_id, T.c.created_at, T.c.reason)
                            .order_by(T.c.user_id)).all()
    assert [tuple(r) for r in rows] == [("ann", AT, "complaint"), ("bob", AT, "complaint")]


def test_a_failed_unit_leaves_nothing(database: Database) -> None:
    with pytest.raises(RuntimeError), database.prepared_write() as run:
        run.execute(INSERT, {"p_tenant": "t", "p_user": "ann", "p_channel": "email", "p_at": AT})
        raise RuntimeError("after the write")
    with database.prepared_read() as run:
        assert not run.exists(EXISTS, {"p_tenant": "t", "p_user": "ann", "p_channel": "email"})


def test_a_missing_parameter_is_named_and_in_lists_are_refused(database: Database) -> None:
    if database.is_postgres:
        pytest.skip("the driver-level checks are SQLite's; PostgreSQL runs the statement as is")
    with pytest.raises(KeyError, match="p_channel"), database.prepared_read() as run:
        run.exists(EXISTS, {"p_tenant": "t", "p_user": "ann"})
    listed = Prepared(sa.select(T.c.user_id).where(
        T.c.user_id.in_(sa.bindparam("ids", expanding=True))))
    with pytest.raises(ValueError, match="expanding"), database.prepared_read() as run:
        run.exists(listed, {"ids": ["ann"]})
