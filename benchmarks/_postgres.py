"""A throw-away PostgreSQL schema for a benchmark run on the shared server."""

from __future__ import annotations

import uuid
from collections.abc import Callable


def postgres_schema_url(server_url: str) -> tuple[str, Callable[[], None]]:
    """A fresh schema on the server at ``server_url``: (the URL whose connections use it, a
    function that drops it)."""
    import sqlalchemy as sa

    from personify.storage.sql.database import normalize_url

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(normalize_url(server_url))
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()

    sep = "&" if "?" in server_url else "?"
    return f"{server_url}{sep}options=-csearch_path%3D{schema}", drop
