"""Storage roles: what Personify keeps, the port each role is written against, the one opener
that picks its backend, and which backend a configuration gives it.

Three settings choose every backend: ``database_url`` (``sqlite:///path.db``,
``postgresql://...``, ``memory://``), ``redis_url`` (unset / ``memory://`` or ``redis://``) and
``model_dir`` (a path). :data:`ROLES` is the table ``docs/architecture.md`` shows and
``personify db roles`` prints for the current settings; ``tests/unit/storage/test_roles.py``
opens every role through its opener with every scheme listed here, so the table cannot drift
from the code. Openers are named by import path (``module:function``) because some live above
the storage layer (the messaging state's opener needs the messaging records).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from personify.domain.errors import ConfigurationError


@dataclass(frozen=True)
class StorageRole:
    """One role: ``port`` (the protocol its adapters implement) and ``opener`` as
    ``module:name``; ``setting`` is the setting whose value picks the backend, ``backends``
    maps each accepted scheme (``sqlite``, ``postgresql``, ``memory``, ``redis``, ``path``) to
    the adapter it gets."""

    name: str
    port: str
    opener: str
    setting: str
    backends: Mapping[str, str]


_DB = {
    "sqlite": "SQLite file (SQLAlchemy)",
    "postgresql": "PostgreSQL (SQLAlchemy)",
    "memory": "SQLite in memory",
}


def _db_role(name: str, port: str, opener: str = "personify.storage.registry:open_stores") -> (
    StorageRole
):
    return StorageRole(name, port, opener, "database_url", _DB)


ROLES: tuple[StorageRole, ...] = (
    _db_role("events", "personify.storage.ports:EventStore"),
    _db_role("people", "personify.storage.ports:UserStore"),
    _db_role("catalogue", "personify.storage.ports:CatalogStore"),
    _db_role("consents", "personify.storage.ports:ConsentStore"),
    _db_role("keys", "personify.storage.ports:KeyStore"),
    _db_role("erasures", "personify.storage.ports:ErasureStore"),
    _db_role("idempotency keys", "personify.storage.sql.idempotency:SqlIdempotencyStore"),
    _db_role(
        "experiments",
        "personify.storage.sql.experiments:SqlExperimentStore",
        "personify.runtime.experiments:open_experiments",
    ),
    _db_role(
        "definitions",
        "personify.storage.sql.messaging_definitions:SqlMessagingDefinitions",
        "personify.storage.registry:open_definitions",
    ),
    _db_role(
        "privacy",
        "personify.storage.sql.privacy_preferences:SqlPreferenceStore",
        "personify.storage.registry:open_privacy_stores",
    ),
    StorageRole(
        "messaging",
        "personify.messaging.ports:OutboxStore",
        "personify.messaging.state_stores:open_state_stores",
        "database_url",
        {
            "sqlite": "SQLite file next to the database (<name>.messaging.db, messaging_db_path)",
            "postgresql": "PostgreSQL, in the database (FOR UPDATE SKIP LOCKED claims)",
            "memory": "SQLite in memory",
        },
    ),
    StorageRole(
        "online state",
        "personify.storage.online.port:OnlineState",
        "personify.storage.online:open_online_state",
        "redis_url",
        {"memory": "in process", "redis": "Redis (shared by every process)"},
    ),
    StorageRole(
        "person cache",
        "personify.storage.person_cache:Generations",
        "personify.storage.registry:open_person_cache",
        "redis_url",
        {"memory": "in process", "redis": "generations in Redis (shared invalidation)"},
    ),
    StorageRole(
        "model files",
        "personify.storage.model_files:FileModelStore",
        "personify.storage.model_files:FileModelStore",
        "model_dir",
        {"path": "files under the directory (atomic writes, manifest per version)"},
    ),
)
"""Every storage role, in the order of ``docs/architecture.md``."""

SCHEMES = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "postgresql+psycopg": "postgresql",
    "memory": "memory",
    "redis": "redis",
    "rediss": "redis",
    "unix": "redis",
}


def scheme_of(setting: str, value: str | None) -> str:
    """The backend kind a setting's value names: a URL scheme of :data:`SCHEMES`, ``memory``
    for an unset ``redis_url``, ``path`` for ``model_dir``."""
    if setting == "model_dir":
        return "path"
    if value is None or value == "":
        return "memory"
    if "://" not in value:
        raise ConfigurationError(
            f"{setting} {value!r} is not a URL", field=setting, accepted=_accepted(setting)
        )
    scheme = value.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"unknown {setting} scheme {scheme!r}", field=setting, accepted=_accepted(setting)
        )
    return SCHEMES[scheme]


def _accepted(setting: str) -> str:
    kinds = sorted({k for r in ROLES if r.setting == setting for k in r.backends})
    return ", ".join(f"{k}://..." for k in kinds)


def backend(role: StorageRole, value: str | None) -> str:
    """The adapter ``role`` gets from the setting's ``value``; ConfigurationError (naming the
    setting and what it accepts) when the role has no backend for it."""
    kind = scheme_of(role.setting, value)
    if kind not in role.backends:
        raise ConfigurationError(
            f"the {role.name} role has no {kind} backend", field=role.setting,
            accepted=", ".join(sorted(role.backends)),
        )
    return role.backends[kind]


def describe(values: Mapping[str, str | None]) -> list[tuple[StorageRole, str]]:
    """Each role with the backend the settings ``values`` (by setting name) give it."""
    return [(role, backend(role, values.get(role.setting))) for role in ROLES]
