"""The SQL engine setup: URL schemes, SQLite durability settings, key secret format."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from personify.domain.errors import ConfigurationError
from personify.storage.registry import open_stores
from personify.storage.sql._columns import from_micros, to_micros
from personify.storage.sql.database import create_engine, normalize_url
from personify.storage.sql.keys import hash_secret, key_id_of


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memory://", "sqlite://"),
        ("sqlite:///var/p.db", "sqlite:///var/p.db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db?x=1", "postgresql+psycopg://u@h/db?x=1"),
    ],
)
def test_accepted_urls_are_normalised(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://h/db", "redis://h", "var/p.db", ""])
def test_unknown_schemes_are_refused_with_the_accepted_ones(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        normalize_url(url)
    assert caught.value.field == "database_url"
    assert caught.value.accepted is not None and "memory://" in caught.value.accepted


def test_sqlite_file_is_durable_and_its_directory_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "p.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
            assert pragma("journal_mode") == "wal"
            assert pragma("synchronous") == 2, "FULL: a commit survives a power cut"
            assert pragma("foreign_keys") == 1
            assert pragma("busy_timeout") >= 1000
        assert path.parent.is_dir()
    finally:
        engine.dispose()


def test_open_without_migrate_leaves_the_database_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    with open_stores(url, migrate=False) as stores:
        assert stores.database is not None
        assert sa.inspect(stores.database.engine).get_table_names() == []


def test_timestamps_in_sqlite_are_exact_microseconds() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    moment = datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=-5)))
    assert from_micros(to_micros(moment)) == moment
    assert from_micros(to_micros(moment)).tzinfo is UTC
    assert to_micros(datetime(1970, 1, 1, tzinfo=UTC)) == 0


def test_key_id_is_parsed_from_the_secret() -> None:
    assert key_id_of("pfy_abc123_rest_with_underscores-") == "abc123"
    assert key_id_of("pfy__x") is None
    assert key_id_of("xyz_abc_def") is None
    assert key_id_of("pfy_abc") is None
    assert len(hash_secret("s")) == 64 and hash_secret("s") != hash_secret("t")
