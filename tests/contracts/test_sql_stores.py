"""The storage contract suite against memory://, a SQLite file and real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from personify.storage.registry import Stores, open_stores
from personify.testing import store_contracts as contracts


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stores_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database of each kind."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nested' / 'personify.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def stores(stores_url: str) -> Iterator[Stores]:
    opened = open_stores(stores_url)
    yield opened
    opened.close()


class TestEventStore(contracts.EventStoreContract):
    pass


class TestUserStore(contracts.UserStoreContract):
    pass


class TestCatalogStore(contracts.CatalogStoreContract):
    pass


class TestConsentStore(contracts.ConsentStoreContract):
    pass


class TestKeyStore(contracts.KeyStoreContract):
    pass


class TestErasureStore(contracts.ErasureStoreContract):
    pass


class TestMigrations(contracts.MigrationContract):
    pass
