"""The storage roles table (``personify.storage.roles``) against the code: every port and opener
it names exists, and every backend it lists opens through the role's opener with a URL of that
kind (SQLite file, PostgreSQL, memory, Redis, a path). Adding a backend to a role (the recipe in
docs/CONTRIBUTING.md) means a row here that opens it."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from personify.domain.errors import ConfigurationError
from personify.storage.model_files import FileModelStore
from personify.storage.online import open_online_state
from personify.storage.person_cache import LocalGenerations, RedisGenerations
from personify.storage.registry import open_stores
from personify.storage.roles import ROLES, StorageRole, backend, describe

PAIRS = [
    pytest.param(role, kind, id=f"{role.name}-{kind}",
                 marks=[pytest.mark.postgres] if kind == "postgresql" else
                 [pytest.mark.redis] if kind == "redis" else [])
    for role in ROLES for kind in role.backends
]
STORES_ATTRIBUTE = {"events": "events", "people": "users", "catalogue": "catalog",
                    "consents": "consents", "keys": "keys", "erasures": "erasures",
                    "idempotency keys": "idempotency"}


def _resolve(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_every_port_and_opener_exists(role: StorageRole) -> None:
    assert _resolve(role.port) is not None
    assert callable(_resolve(role.opener))


@pytest.fixture
def url_of(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / 'roles.db'}"
        if kind == "postgresql":
            return str(request.getfixturevalue("postgres_url"))
        if kind == "redis":
            return str(request.getfixturevalue("redis_url"))
        if kind == "path":
            return str(tmp_path / "models")
        return "memory://"

    return make


@pytest.fixture
def opened() -> Iterator[list[Any]]:
    closers: list[Any] = []
    yield closers
    for close in reversed(closers):
        close()


SHARED_DATABASE = {"experiments", "definitions", "privacy", "messaging"}
"""Roles kept beside the core stores: their opener takes the URL, or the process's database."""


def _check_opened(role: StorageRole, opened: Any) -> None:
    """The opened object serves the role's port (an empty store answers)."""
    if role.name in ("events", "people", "catalogue"):
        assert getattr(opened, STORES_ATTRIBUTE[role.name]).count("t") == 0
    elif role.name == "consents":
        assert opened.consents.history("t", "ann") == []
    elif role.name == "keys":
        assert opened.keys.list("t") == []
    elif role.name == "erasures":
        assert opened.erasures.is_erased("t", "ann") is False
    elif role.name == "idempotency keys":
        assert opened.idempotency.purge(datetime.now(UTC)) == 0
    elif role.name == "experiments":
        assert opened.experiments.list("t") == []
    elif role.name == "definitions":
        assert opened.list("t", "template") == []
    elif role.name == "privacy":
        assert opened.preferences.get("t", "ann") is None
    elif role.name == "messaging":
        assert opened.outbox.counts() == {}
    else:  # pragma: no cover - a new role needs its row here
        pytest.fail(f"no opening check for role {role.name!r}")


def _closer(opened: Any) -> Any:
    if hasattr(opened, "close"):
        return opened.close
    return getattr(getattr(opened, "outbox", None), "close", lambda: None)


@pytest.mark.parametrize(("role", "kind"), PAIRS)
def test_every_listed_backend_opens_through_the_role_opener(
    role: StorageRole, kind: str, url_of: Any, opened: list[Any], tmp_path: Path
) -> None:
    url = url_of(kind)
    assert backend(role, url) == role.backends[kind]
    opener = _resolve(role.opener)
    if role.setting == "database_url":
        # one opener per role, called with the URL alone: the same for every scheme
        alone = opener(url)
        opened.append(_closer(alone))
        _check_opened(role, alone)
        if role.name in SHARED_DATABASE:  # or on the process's own database
            stores = open_stores(url)
            opened.append(stores.close)
            shared = opener(url, database=stores.database)
            opened.append(_closer(shared))
            _check_opened(role, shared)
        if role.name == "messaging":
            expected = {"sqlite": "file", "postgresql": "database", "memory": "memory"}[kind]
            assert alone.location.kind == expected
        if kind == "postgresql":
            assert list(tmp_path.iterdir()) == []  # nothing local
    elif role.name == "online state":
        state = open_online_state(None if kind == "memory" else url, "roles-test")
        assert state.neighbours("t", "i1", 5) == []
        state.close()
    elif role.name == "person cache":
        for opened_by in (url, None) if kind == "memory" else (url,):
            cache = opener(opened_by, "roles-test")
            assert isinstance(cache.generations,
                              RedisGenerations if kind == "redis" else LocalGenerations)
            assert cache.read("user", "t", "ann", lambda: None) is None
    elif role.name == "model files":
        assert FileModelStore(url).list("t") == []
    else:  # pragma: no cover - a new role needs its row here
        pytest.fail(f"no opening check for role {role.name!r}")


def test_unknown_schemes_name_the_setting() -> None:
    with pytest.raises(ConfigurationError) as refused:
        describe({"database_url": "mysql://db/x", "redis_url": None, "model_dir": "m"})
    assert refused.value.field == "database_url" and "postgresql://" in str(
        refused.value.accepted)
    with pytest.raises(ConfigurationError) as refused:
        describe({"database_url": "memory://", "redis_url": "postgresql://x", "model_dir": "m"})
    assert refused.value.field == "redis_url"
