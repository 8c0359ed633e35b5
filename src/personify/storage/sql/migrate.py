"""Alembic migrations, run in code (no alembic.ini): safe when several processes start at once.

PostgreSQL serialises concurrent upgrades with a session advisory lock; SQLite with
``BEGIN IMMEDIATE`` (the database writer lock), so the second process waits and then finds the
schema already at head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from personify.storage.sql.database import begin_immediate, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
ADVISORY_LOCK_KEY = 0x5045_5253_4F4E_4659 & 0x7FFF_FFFF_FFFF_FFFF
"""``pg_advisory_lock`` key held while upgrading ("PERSONFY" in ASCII)."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations (and at ``connection`` if given)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped with this version of Personify."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations directory has no revisions"
    return head


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Bring the database behind ``engine`` to ``revision`` under a cross-process lock."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            conn.commit()
            try:
                with conn.begin():
                    command.upgrade(alembic_config(conn), revision)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
                conn.commit()
        else:
            with begin_immediate(conn):
                transaction = conn.begin()
            with transaction:
                command.upgrade(alembic_config(conn), revision)


def engine_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str, revision: str = "head") -> str | None:
    """Upgrade the database at ``url`` (for ``personify db upgrade``); returns the new revision."""
    engine = create_engine(url)
    try:
        upgrade_engine(engine, revision)
        return engine_revision(engine)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The schema revision of the database at ``url`` (None if never migrated)."""
    engine = create_engine(url)
    try:
        return engine_revision(engine)
    finally:
        engine.dispose()
