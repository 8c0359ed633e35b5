"""The hot path of event ingestion: batch inserts on the raw driver, one per dialect.

Both return the ids this call inserted, so duplicates are exactly the ids not returned. The
batch must already be free of repeated ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from personify.domain.events import Event
from personify.storage.sql._columns import to_micros

_COLUMNS = (
    "tenant, event_id, type, user_id, anonymous_id, item_id, timestamp, received_at, "
    "recommendation_id, order_id, payload"
)
_SQLITE_INSERT = (
    f"INSERT INTO personify_events ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (tenant, event_id) DO NOTHING"
)
_SQLITE_INSERTED = "SELECT event_id FROM personify_events WHERE id > ? AND tenant = ?"
_POSTGRES_INSERT = f"""
INSERT INTO personify_events ({_COLUMNS})
SELECT %b, * FROM unnest(
    %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
    %b::timestamptz[], %b::timestamptz[], %b::text[], %b::text[], %b::text[]
)
ON CONFLICT (tenant, event_id) DO NOTHING
RETURNING event_id
"""


def _payload(event: Event, received_at: str) -> str:
    """The whole event as JSON, with the store's ``received_at`` when the client sent none.

    Nothing is excluded (a property may be ``None``). Replacing the first ``"received_at":null``
    is exact: it can only occur as a key (inside a JSON string its quotes would be escaped), and
    the top-level field is serialised before ``context`` and ``properties``. This avoids copying
    every model, a third of the cost of a batch.
    """
    payload = event.model_dump_json()
    if event.received_at is None:
        payload = payload.replace('"received_at":null', f'"received_at":"{received_at}"', 1)
    return payload


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def insert_sqlite(conn: Connection, tenant: str, batch: Sequence[Event], now: datetime) -> set[str]:
    """``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING``; duplicates found by rowid.

    The write unit of work began with ``BEGIN IMMEDIATE``, so no other writer can commit in
    between: rows this call inserted are exactly those with an id above the maximum before it.
    Only when fewer rows changed than were sent (a retry) are they looked up.
    """
    received, now_micros = _iso(now), to_micros(now)
    rows = [
        (
            tenant,
            event.event_id,
            event.type,
            event.user_id,
            event.anonymous_id,
            event.item_id,
            to_micros(event.timestamp),
            now_micros if event.received_at is None else to_micros(event.received_at),
            event.recommendation_id,
            event.order_id,
            _payload(event, received),
        )
        for event in batch
    ]
    driver: Any = conn.connection.driver_connection
    cursor = driver.cursor()
    try:
        cursor.execute("SELECT coalesce(max(id), 0) FROM personify_events")
        (before,) = cursor.fetchone()
        changes = driver.total_changes
        cursor.executemany(_SQLITE_INSERT, rows)
        if driver.total_changes - changes == len(rows):
            return {row[1] for row in rows}
        cursor.execute(_SQLITE_INSERTED, (before, tenant))
        return {row[0] for row in cursor.fetchall()}
    finally:
        cursor.close()


def insert_postgres(
    conn: Connection, tenant: str, batch: Sequence[Event], now: datetime
) -> set[str]:
    """One ``INSERT ... SELECT unnest(arrays) ON CONFLICT DO NOTHING RETURNING``: one round trip;
    only the rows this transaction inserted come back, whatever other writers do.

    Parameters go in binary (``%b``): psycopg's text array format escapes every element with a
    regular expression, which costs more than the whole insert.
    """
    columns: list[list[Any]] = [[] for _ in range(10)]
    received = _iso(now)
    for event in batch:
        values = (
            event.event_id,
            event.type,
            event.user_id,
            event.anonymous_id,
            event.item_id,
            event.timestamp,
            now if event.received_at is None else event.received_at,
            event.recommendation_id,
            event.order_id,
            _payload(event, received),
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_POSTGRES_INSERT, [tenant, *columns])
        return {row[0] for row in cursor.fetchall()}
    finally:
        cursor.close()
