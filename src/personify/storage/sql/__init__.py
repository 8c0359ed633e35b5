"""SQL adapters (SQLite and PostgreSQL) of every storage port, on SQLAlchemy Core.

Open them through :func:`personify.storage.registry.open_stores`.
"""

from personify.storage.sql.catalog import SqlCatalogStore
from personify.storage.sql.consents import SqlConsentStore
from personify.storage.sql.database import Database, create_engine, normalize_url
from personify.storage.sql.erasures import SqlErasureStore
from personify.storage.sql.events import SqlEventStore
from personify.storage.sql.keys import SqlKeyStore
from personify.storage.sql.migrate import current_revision, head_revision, upgrade
from personify.storage.sql.users import SqlUserStore

__all__ = [
    "Database",
    "SqlCatalogStore",
    "SqlConsentStore",
    "SqlErasureStore",
    "SqlEventStore",
    "SqlKeyStore",
    "SqlUserStore",
    "create_engine",
    "current_revision",
    "head_revision",
    "normalize_url",
    "upgrade",
]
