"""SQL event log: append-only, unique by (tenant, event_id), batched inserts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from personify.domain.errors import InvalidInput
from personify.domain.events import Event
from personify.storage.ports import AppendResult
from personify.storage.sql._event_inserts import insert_postgres, insert_sqlite
from personify.storage.sql.database import Database
from personify.storage.sql.schema import events, user_anonymous_ids

_T = events.c
RECENT_CHUNK = 500
"""Ids per query of :meth:`SqlEventStore.recent_for_users` (twice that many bound values)."""


class SqlEventStore:
    """The :class:`~personify.storage.ports.EventStore` on SQLite or PostgreSQL.

    Each event is kept whole as JSON (lossless round trip) next to the indexed columns the
    queries filter on. ``append`` is one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` per
    batch: only rows this call actually inserted come back, so duplicates are reported right even
    when several writers race on the same event id.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def append(self, tenant: str, events_: Sequence[Event]) -> AppendResult:
        """Store new events in one transaction; repeated ids (in the store or batch) are skipped."""
        if not events_:
            return AppendResult()
        now = datetime.now(UTC)
        seen: set[str] = set()
        batch: list[Event] = []
        order: list[tuple[str, bool]] = []
        for event in events_:
            event_id = event.event_id
            first = event_id not in seen
            order.append((event_id, first))
            if first:
                seen.add(event_id)
                batch.append(event)
        with self._db.write() as conn:
            if self._db.is_postgres:
                inserted = insert_postgres(conn, tenant, batch, now)
            else:
                inserted = insert_sqlite(conn, tenant, batch, now)
        result = AppendResult()
        for event_id, first in order:
            if first and event_id in inserted:
                result.stored.append(event_id)
            else:
                result.duplicates.append(event_id)
        return result

    def get(self, tenant: str, event_id: str) -> Event | None:
        query = sa.select(_T.payload).where(_T.tenant == tenant, _T.event_id == event_id)
        with self._db.read() as conn:
            payload = conn.execute(query).scalar_one_or_none()
        return None if payload is None else Event.model_validate_json(payload)

    def for_user(
        self,
        tenant: str,
        user_id: str,
        *,
        limit: int = 100,
        before: datetime | None = None,
        types: Iterable[str] | None = None,
    ) -> list[Event]:
        """The user's events and those still under their linked anonymous ids, newest first."""
        linked = sa.select(user_anonymous_ids.c.anonymous_id).where(
            user_anonymous_ids.c.tenant == tenant, user_anonymous_ids.c.user_id == user_id
        )
        type_list = None if types is None else list(types)
        queries = [
            _newest(tenant, _T.user_id == user_id, limit, before, type_list),
            _newest(
                tenant,
                sa.and_(_T.user_id.is_(None), _T.anonymous_id.in_(linked.scalar_subquery())),
                limit,
                before,
                type_list,
                by_person=True,
            ),
        ]
        with self._db.read() as conn:
            rows = [row for query in queries for row in conn.execute(query)]
        rows.sort(key=lambda row: (row.timestamp, row.id), reverse=True)
        return [Event.model_validate_json(row.payload) for row in rows[:limit]]

    def recent_for_users(
        self,
        tenant: str,
        user_ids: Iterable[str],
        *,
        types: Iterable[str] | None = None,
        since: datetime | None = None,
        limit_per_user: int = 100,
    ) -> dict[str, list[Event]]:
        """:meth:`for_user` for many people: one query per :data:`RECENT_CHUNK` ids.

        The person's own rows (index ``tenant, user_id, timestamp``) and the rows still under
        their linked anonymous ids (index ``tenant, anonymous_id, timestamp``) are ranked per
        person by ``ROW_NUMBER() OVER (PARTITION BY person ORDER BY timestamp DESC, id DESC)``
        on the narrow columns only; the payloads of the kept rows are read by primary key.
        """
        if isinstance(limit_per_user, bool) or not isinstance(limit_per_user, int):
            raise InvalidInput(
                f"limit_per_user must be an integer, got {limit_per_user!r}",
                field="limit_per_user",
                accepted="an integer >= 0",
            )
        if limit_per_user < 0:
            raise InvalidInput(
                f"limit_per_user must be >= 0, got {limit_per_user}",
                field="limit_per_user",
                accepted="an integer >= 0",
            )
        wanted = list(dict.fromkeys(user_ids))
        found: dict[str, list[Event]] = {user_id: [] for user_id in wanted}
        if not wanted or limit_per_user == 0:
            return found
        type_list = None if types is None else list(types)
        with self._db.read() as conn:
            for start in range(0, len(wanted), RECENT_CHUNK):
                chunk = wanted[start : start + RECENT_CHUNK]
                query = _recent_query(tenant, chunk, type_list, since, limit_per_user)
                for row in conn.execute(query):
                    found[row.person].append(Event.model_validate_json(row.payload))
        return found

    def for_anonymous(self, tenant: str, anonymous_id: str, *, limit: int = 100) -> list[Event]:
        query = _newest(tenant, _T.anonymous_id == anonymous_id, limit, None, None)
        with self._db.read() as conn:
            return [Event.model_validate_json(row.payload) for row in conn.execute(query)]

    def scan(
        self,
        tenant: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        types: Iterable[str] | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[Event]:
        """Every event with ``since <= timestamp < until`` in (timestamp, id) order.

        Pages with keyset pagination (never OFFSET); no transaction stays open between pages.
        """
        base = sa.select(_T.id, _T.timestamp, _T.payload).where(_T.tenant == tenant)
        if since is not None:
            base = base.where(_T.timestamp >= since)
        if until is not None:
            base = base.where(_T.timestamp < until)
        if types is not None:
            base = base.where(_T.type.in_(list(types)))
        base = base.order_by(_T.timestamp, _T.id).limit(batch_size)
        after: tuple[datetime, int] | None = None
        while True:
            query = base if after is None else base.where(sa.tuple_(_T.timestamp, _T.id) > after)
            with self._db.read() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                yield Event.model_validate_json(row.payload)
            if len(rows) < batch_size:
                return
            after = (rows[-1].timestamp, rows[-1].id)

    def count(self, tenant: str) -> int:
        query = sa.select(sa.func.count()).select_from(events).where(_T.tenant == tenant)
        with self._db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def link_anonymous(self, tenant: str, anonymous_id: str, user_id: str) -> int:
        """Give ``user_id`` to the past events sent only under ``anonymous_id``."""
        query = sa.select(_T.id, _T.payload).where(
            _T.tenant == tenant, _T.anonymous_id == anonymous_id, _T.user_id.is_(None)
        )
        update = (
            sa.update(events)
            .where(_T.id == sa.bindparam("row_id"))
            .values(user_id=user_id, payload=sa.bindparam("new_payload"))
        )
        with self._db.write() as conn:
            changes = [
                {"row_id": row.id, "new_payload": _with_user(row.payload, user_id)}
                for row in conn.execute(query)
            ]
            if changes:
                conn.execute(update, changes)
        return len(changes)

    def delete_user(self, tenant: str, user_id: str, anonymous_ids: Sequence[str] = ()) -> int:
        """Erase the user's events, those of ``anonymous_ids`` and of their linked anonymous ids."""
        linked = sa.select(user_anonymous_ids.c.anonymous_id).where(
            user_anonymous_ids.c.tenant == tenant, user_anonymous_ids.c.user_id == user_id
        )
        # one statement per identity kind, each on its own index (an OR of them scans the
        # tenant's whole event log), in one transaction
        who = [_T.user_id == user_id, _T.anonymous_id.in_(linked.scalar_subquery())]
        if anonymous_ids:
            who.append(_T.anonymous_id.in_(list(anonymous_ids)))
        with self._db.write() as conn:
            return sum(
                _rowcount(conn, sa.delete(events).where(_T.tenant == tenant, condition))
                for condition in who
            )

    def delete_older_than(self, tenant: str, event_type: str, cutoff: datetime) -> int:
        statement = sa.delete(events).where(
            _T.tenant == tenant, _T.type == event_type, _T.timestamp < cutoff
        )
        with self._db.write() as conn:
            return _rowcount(conn, statement)


def _newest(
    tenant: str,
    who: sa.ColumnElement[bool],
    limit: int,
    before: datetime | None,
    types: list[str] | None,
    *,
    by_person: bool = False,
) -> sa.Select[Any]:
    """The newest ``limit`` rows of ``who``. ``by_person`` keeps SQLite (no statistics) on the
    index of the person column when ``who`` is an ``IN``: the order and the type filter go
    through expressions no index provides, else it walks the whole tenant's (type's) events
    newest first looking for the person's."""
    query = sa.select(_T.id, _T.timestamp, _T.payload).where(_T.tenant == tenant, who)
    if before is not None:
        query = query.where(_T.timestamp < before)
    if types is not None:
        query = query.where((_T.type + "" if by_person else _T.type).in_(types))
    newest = sa.func.coalesce(_T.timestamp, _T.timestamp) if by_person else _T.timestamp
    return query.order_by(newest.desc(), _T.id.desc()).limit(limit)


def _recent_query(
    tenant: str,
    user_ids: list[str],
    types: list[str] | None,
    since: datetime | None,
    limit: int,
) -> sa.Select[Any]:
    links = user_anonymous_ids.c
    own = sa.select(_T.user_id.label("person"), _T.id, _T.timestamp).where(
        _T.tenant == tenant, _T.user_id.in_(user_ids)
    )
    anonymous_ids = sa.select(links.anonymous_id).where(
        links.tenant == tenant, links.user_id.in_(user_ids)
    )
    owner = (
        sa.select(links.user_id)
        .where(links.tenant == tenant, links.anonymous_id == _T.anonymous_id)
        .scalar_subquery()
    )
    linked = sa.select(owner.label("person"), _T.id, _T.timestamp).where(
        _T.tenant == tenant,
        _T.user_id.is_(None),
        _T.anonymous_id.in_(anonymous_ids.scalar_subquery()),
    )
    if since is not None:
        own = own.where(_T.timestamp >= since)
        linked = linked.where(_T.timestamp >= since)
    if types is not None:
        # ``type || ''`` keeps the planner off the (tenant, type, timestamp) index: without
        # statistics SQLite prefers it to the per-person one for ``user_id IN (...)``, which
        # would read every event of the type in the tenant
        untyped = (_T.type + "").in_(types)
        own = own.where(untyped)
        linked = linked.where(untyped)
    both = sa.union_all(own, linked).subquery("candidates")
    rank = (
        sa.func.row_number()
        .over(partition_by=both.c.person, order_by=(both.c.timestamp.desc(), both.c.id.desc()))
        .label("rank")
    )
    ranked = sa.select(both.c.person, both.c.id, rank).subquery("ranked")
    return (
        sa.select(ranked.c.person, _T.payload)
        .join_from(ranked, events, _T.id == ranked.c.id)
        .where(ranked.c.rank <= limit)
        .order_by(ranked.c.person, ranked.c.rank)
    )


def _with_user(payload: str, user_id: str) -> str:
    document = orjson.loads(payload)
    document["user_id"] = user_id
    return orjson.dumps(document).decode()


def _rowcount(conn: Connection, statement: sa.Executable) -> int:
    result = conn.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)
