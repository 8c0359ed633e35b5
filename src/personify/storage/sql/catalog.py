"""SQL catalogue: every item kept whole as JSON next to the columns lists and filters use."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Connection

from personify.domain.errors import NotFound
from personify.domain.items import Item, ItemPatch
from personify.storage.sql._columns import to_utc
from personify.storage.sql._dialect import like_pattern, upsert_insert
from personify.storage.sql._validation import invalid_input
from personify.storage.sql.database import Database
from personify.storage.sql.schema import items

_I = items.c
_DATETIME_FIELDS = ("created_at", "expires_at", "updated_at")


class SqlCatalogStore:
    """The :class:`~personify.storage.ports.CatalogStore` on SQLite or PostgreSQL.

    ``upsert`` replaces an item; ``created_at`` is kept from the client, else from the stored
    item, else set to now; ``updated_at`` is always the store's clock. Datetimes are UTC.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def upsert(self, tenant: str, items_: Sequence[Item]) -> list[Item]:
        """Insert or replace ``items_`` (the last of repeated ids wins); returns what is stored."""
        latest = {item.item_id: item for item in items_}
        now = datetime.now(UTC)
        with self._db.write() as conn:
            created = self._created(conn, tenant, list(latest))
            final = [
                _normalized(
                    item,
                    created_at=item.created_at or created.get(item_id) or now,
                    updated_at=now,
                )
                for item_id, item in latest.items()
            ]
            self._write(conn, tenant, final)
        return final

    def patch(self, tenant: str, item_id: str, patch: ItemPatch) -> Item:
        """Change the fields present in ``patch``; ``properties`` merge name by name."""
        changes = patch.model_dump(exclude_unset=True)
        with self._db.write() as conn:
            current = self._load(conn, tenant, [item_id], lock=True).get(item_id)
            if current is None:
                raise NotFound(f"item {item_id!r} does not exist", field="item_id")
            merged = current.model_dump()
            if changes.get("properties") is not None:
                changes["properties"] = current.properties | changes["properties"]
            merged.update(changes)
            try:
                item = Item.model_validate(merged)
            except ValidationError as exc:
                raise invalid_input(exc) from exc
            now = datetime.now(UTC)
            item = _normalized(item, created_at=current.created_at or now, updated_at=now)
            self._write(conn, tenant, [item])
        return item

    def get(self, tenant: str, item_id: str) -> Item | None:
        with self._db.read() as conn:
            return self._load(conn, tenant, [item_id]).get(item_id)

    def get_many(self, tenant: str, item_ids: Sequence[str]) -> dict[str, Item]:
        """The items that exist among ``item_ids`` (missing ids are simply absent)."""
        ids = list(dict.fromkeys(item_ids))
        found: dict[str, Item] = {}
        with self._db.read() as conn:
            for start in range(0, len(ids), 500):
                found.update(self._load(conn, tenant, ids[start : start + 500]))
        return found

    def list(
        self,
        tenant: str,
        *,
        type: str | None = None,
        query: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Item]:
        """Items by id; ``query`` matches id or title case-insensitively (any script)."""
        select = sa.select(_I.payload).where(_I.tenant == tenant)
        if type is not None:
            select = select.where(_I.type == type)
        if query:
            select = select.where(_I.search_text.like(like_pattern(query.casefold()), escape="\\"))
        select = select.order_by(_I.item_id).limit(limit).offset(offset)
        with self._db.read() as conn:
            return [Item.model_validate_json(payload) for payload in conn.execute(select).scalars()]

    def scan(self, tenant: str, *, batch_size: int = 5_000) -> Iterator[Item]:
        """Every item of the tenant in id order, paged by id (keyset, no OFFSET)."""
        base = (
            sa.select(_I.item_id, _I.payload)
            .where(_I.tenant == tenant)
            .order_by(_I.item_id)
            .limit(batch_size)
        )
        after: str | None = None
        while True:
            query = base if after is None else base.where(_I.item_id > after)
            with self._db.read() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                yield Item.model_validate_json(row.payload)
            if len(rows) < batch_size:
                return
            after = rows[-1].item_id

    def count(self, tenant: str) -> int:
        query = sa.select(sa.func.count()).select_from(items).where(_I.tenant == tenant)
        with self._db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def delete(self, tenant: str, item_id: str) -> bool:
        statement = sa.delete(items).where(_I.tenant == tenant, _I.item_id == item_id)
        with self._db.write() as conn:
            return bool(getattr(conn.execute(statement), "rowcount", 0))

    def _created(
        self, conn: Connection, tenant: str, item_ids: Sequence[str]
    ) -> dict[str, datetime]:
        created: dict[str, datetime] = {}
        for start in range(0, len(item_ids), 500):
            query = sa.select(_I.item_id, _I.created_at).where(
                _I.tenant == tenant, _I.item_id.in_(list(item_ids[start : start + 500]))
            )
            created.update({row.item_id: row.created_at for row in conn.execute(query)})
        return created

    def _load(
        self, conn: Connection, tenant: str, item_ids: Sequence[str], *, lock: bool = False
    ) -> dict[str, Item]:
        if not item_ids:
            return {}
        query = sa.select(_I.payload).where(_I.tenant == tenant, _I.item_id.in_(list(item_ids)))
        if lock and self._db.is_postgres:
            query = query.with_for_update()
        loaded = (Item.model_validate_json(payload) for payload in conn.execute(query).scalars())
        return {item.item_id: item for item in loaded}

    def _write(self, conn: Connection, tenant: str, items_: Sequence[Item]) -> None:
        insert = upsert_insert(self._db.dialect, items)
        replace = {
            column.name: insert.excluded[column.name]
            for column in items.columns
            if column.name not in ("tenant", "item_id")
        }
        rows = [_row(tenant, item) for item in items_]
        for start in range(0, len(rows), 1_000):
            conn.execute(
                insert.on_conflict_do_update(index_elements=["tenant", "item_id"], set_=replace),
                rows[start : start + 1_000],
            )


def _normalized(item: Item, *, created_at: datetime, updated_at: datetime) -> Item:
    """``item`` with the store's timestamps and every datetime as aware UTC."""
    update: dict[str, Any] = {"created_at": created_at, "updated_at": updated_at}
    if item.expires_at is not None:
        update["expires_at"] = item.expires_at
    return item.model_copy(update={name: to_utc(value) for name, value in update.items()})


def _row(tenant: str, item: Item) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "item_id": item.item_id,
        "type": item.type,
        "title": item.title,
        "search_text": f"{item.item_id}\n{item.title}".casefold(),
        "available": item.available,
        "hidden": item.hidden,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "expires_at": item.expires_at,
        "payload": item.model_dump_json(),
    }
