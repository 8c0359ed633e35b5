"""Opens the stores for a database URL: the one place that picks a storage adapter.

>>> stores = open_stores("memory://")
>>> stores.events.count("default")
0
>>> stores.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

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
from personify.storage.sql.database import Database, create_engine
from personify.storage.sql.erasures import SqlErasureStore
from personify.storage.sql.events import SqlEventStore
from personify.storage.sql.keys import SqlKeyStore
from personify.storage.sql.migrate import upgrade_engine
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


def open_stores(url: str, *, migrate: bool = True, erasure_hash_key: bytes | None = None) -> Stores:
    """The stores for ``url`` (``sqlite:///path.db``, ``postgresql://...``, ``memory://``).

    With ``migrate`` the schema is brought to the newest revision first (safe when several
    processes start together). Unknown schemes raise ConfigurationError naming the accepted ones.
    """
    engine = create_engine(url)
    try:
        if migrate:
            upgrade_engine(engine)
    except BaseException:
        engine.dispose()
        raise
    db = Database(engine)
    return Stores(
        events=SqlEventStore(db),
        users=SqlUserStore(db),
        catalog=SqlCatalogStore(db),
        consents=SqlConsentStore(db),
        keys=SqlKeyStore(db),
        erasures=SqlErasureStore(db, hash_key=erasure_hash_key),
        engine_url=url,
        database=db,
    )
