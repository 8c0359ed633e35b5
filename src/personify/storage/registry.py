"""Opens the stores for a database URL: the one place that picks a storage adapter.

The person cache opens by the ``redis_url`` (:func:`open_person_cache`). Every role kept in the
database (``personify.storage.roles``) opens through :func:`open_database`:
the core stores (:func:`open_stores`), the messaging definitions (:func:`open_definitions`), the
privacy tables (:func:`open_privacy_stores`), the experiments
(``personify.runtime.experiments.open_experiments``) and the messaging state
(``personify.messaging.state_stores.open_state_stores``). Each opener takes the URL and, to share
the process's engine, an open ``database``; a database it opened itself is disposed by its
``close()``, a shared one never.

>>> stores = open_stores("memory://")
>>> stores.events.count("default")
0
>>> open_definitions(stores.engine_url, database=stores.database).list("default", "template")
[]
>>> stores.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

from sqlalchemy import exc as sa_exc

from personify.domain.errors import ConfigurationError, Unavailable
from personify.storage.online import REDIS_SCHEMES
from personify.storage.online.fallback import FallbackOnlineState
from personify.storage.person_cache import (
    Generations,
    LocalGenerations,
    PersonCache,
    RedisGenerations,
)
from personify.storage.ports import (
    CatalogStore,
    ConsentStore,
    ErasureStore,
    EventStore,
    KeyStore,
    UserStore,
)
from personify.storage.sql.catalog import SqlCatalogStore
from personify.storage.sql.consents import SqlConsentStore
from personify.storage.sql.database import Database, SqliteSync, create_engine
from personify.storage.sql.erasures import SqlErasureStore
from personify.storage.sql.events import SqlEventStore
from personify.storage.sql.idempotency import SqlIdempotencyStore
from personify.storage.sql.keys import SqlKeyStore
from personify.storage.sql.messaging_definitions import SqlMessagingDefinitions
from personify.storage.sql.migrate import upgrade_engine
from personify.storage.sql.privacy_audit import SqlAuditLog
from personify.storage.sql.privacy_preferences import SqlPreferenceStore
from personify.storage.sql.users import SqlUserStore


@dataclass
class Stores:
    """Every store of one database, sharing one engine. ``close()`` releases its connections."""

    events: EventStore
    users: UserStore
    catalog: CatalogStore
    consents: ConsentStore
    keys: KeyStore
    erasures: ErasureStore
    engine_url: str
    database: Database | None = None
    idempotency: SqlIdempotencyStore | None = None
    """The first answers to ``Idempotency-Key`` requests (the API's retried writes)."""

    def close(self) -> None:
        if self.database is not None:
            self.database.dispose()

    def __enter__(self) -> Stores:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def unreachable(engine: Any, exc: Exception) -> Unavailable:
    """One line for a database that cannot be reached: where, and the driver's first line."""
    where = engine.url.render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return Unavailable(
        f"cannot connect to the database {where}: {reason[0] if reason else type(exc).__name__}",
        field="database_url",
        accepted="a reachable database (check host, port, credentials; PostgreSQL is given "
        "10 s to answer)",
    )


def open_database(
    url: str, *, migrate: bool = True, sqlite_synchronous: SqliteSync = "FULL"
) -> Database:
    """The database for ``url`` (``sqlite:///path.db``, ``postgresql://...``, ``memory://``),
    the one place every SQL-backed role opens one.

    With ``migrate`` the schema is brought to the newest revision first (safe when several
    processes start together). ``sqlite_synchronous`` is SQLite's durability (see
    :data:`~personify.storage.sql.database.SqliteSync`). Unknown schemes raise
    ConfigurationError naming the accepted ones; an unreachable server raises Unavailable
    naming where."""
    engine = create_engine(url, sqlite_synchronous=sqlite_synchronous)
    try:
        if migrate:
            upgrade_engine(engine)
    except sa_exc.OperationalError as exc:
        engine.dispose()
        raise unreachable(engine, exc) from None
    except BaseException:
        engine.dispose()
        raise
    return Database(engine)


def role_database(url: str, database: Database | None) -> tuple[Database, bool]:
    """What a role opener works on: the shared ``database`` when given (not owned), else one
    opened for ``url`` (owned: the opener's ``close()`` disposes it)."""
    if database is not None:
        return database, False
    return open_database(url), True


def open_stores(url: str, *, migrate: bool = True, erasure_hash_key: bytes | None = None) -> Stores:
    """The stores for ``url`` (``sqlite:///path.db``, ``postgresql://...``, ``memory://``),
    on one :func:`open_database` (see there for ``migrate`` and errors)."""
    db = open_database(url, migrate=migrate)
    return Stores(
        events=SqlEventStore(db),
        users=SqlUserStore(db),
        catalog=SqlCatalogStore(db),
        consents=SqlConsentStore(db),
        keys=SqlKeyStore(db),
        erasures=SqlErasureStore(db, hash_key=erasure_hash_key),
        engine_url=url,
        database=db,
        idempotency=SqlIdempotencyStore(db),
    )


def open_definitions(url: str, *, database: Database | None = None) -> SqlMessagingDefinitions:
    """The messaging definitions (templates, journeys, campaigns, pages) for ``url``."""
    db, owns = role_database(url, database)
    return SqlMessagingDefinitions(db, owns_database=owns)


@dataclass
class PrivacyStores:
    """The privacy role's tables: preference centre documents and the audit log."""

    preferences: SqlPreferenceStore
    audit: SqlAuditLog
    database: Database
    owns_database: bool = False

    def close(self) -> None:
        if self.owns_database:
            self.database.dispose()


def open_privacy_stores(url: str, *, database: Database | None = None) -> PrivacyStores:
    """The preference and audit stores for ``url``."""
    db, owns = role_database(url, database)
    return PrivacyStores(SqlPreferenceStore(db), SqlAuditLog(db), db, owns)


def open_person_cache(
    url: str | None,
    prefix: str = "personify",
    *,
    key_secret: bytes | None = None,
    online_state: Any = None,
    warnings: list[str] | None = None,
) -> PersonCache:
    """The person cache (``personify.storage.person_cache``) for the ``redis_url`` setting:
    unset or ``memory://`` keeps the generations in this process; ``redis://``, ``rediss://``
    and ``unix://`` keep them in that Redis under ``prefix``, so every process invalidates
    every other (a Redis that cannot be reached makes each read go to the database until it
    answers again: never stale). Person keys are named by the keyed hash of ``key_secret``
    (the ``redis_key_secret``), as the online state names them.

    ``online_state``, the process's own, shares its Redis connection; one that fell back to
    the process at start-up (its Redis was unreachable) gives generations in this process too,
    with a line in ``warnings``."""
    return PersonCache(_generations(url, prefix, key_secret, online_state, warnings))


def _generations(
    url: str | None, prefix: str, key_secret: bytes | None, online_state: Any,
    warnings: list[str] | None,
) -> Generations:
    if url is None or url == "memory://":
        return LocalGenerations()
    if not url.startswith(REDIS_SCHEMES):
        raise ConfigurationError(
            f"unsupported person cache URL {url!r}",
            field="redis_url",
            accepted="unset or memory:// (in-process), redis://host:port/db, rediss://, unix://",
        )
    if not prefix or any(c.isspace() for c in prefix):
        raise ConfigurationError(
            f"invalid Redis key prefix {prefix!r}",
            field="redis_prefix",
            accepted="a non-empty prefix without blanks, e.g. 'personify'",
        )
    if online_state is not None:
        primary = (online_state.primary if isinstance(online_state, FallbackOnlineState)
                   else online_state)
        client = getattr(primary, "client", None)  # a RedisOnlineState
        if client is not None:
            return RedisGenerations(client, str(getattr(primary, "prefix", prefix)),
                                    getattr(primary, "subject", None))
        if warnings is not None:
            warnings.append("person cache: generations in this process (the online state's Redis "
                       "was unreachable at start)")
        return LocalGenerations()
    try:
        from personify.storage.online.redis import SubjectKeys, connect
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise Unavailable(
            "the Redis person cache needs the redis client library",
            field="redis_url",
            accepted="pip install 'personify[redis]'",
        ) from exc
    client = connect(url)
    return RedisGenerations(client, prefix, SubjectKeys(client, prefix, key_secret))
