"""``/v1/items``: the catalogue. Reading needs the ``serve`` scope; writing needs ``admin``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from personify.api.bodies import read_json
from personify.api.deps import AdminKey, ServeKey, SettingsDep, StoresDep
from personify.api.openapi import documented_body
from personify.api.routing import KeyFirstRoute
from personify.api.schemas.bulk import MAX_RECORD_BYTES, records_of
from personify.api.schemas.common import BulkResultOut, RejectionOut
from personify.api.schemas.items import ItemCreate, ItemFields, ItemList, ItemPatch
from personify.domain import limits
from personify.domain._fields import Identifier, Name, ShortText
from personify.domain.errors import NotFound
from personify.domain.items import Item
from personify.ingestion import validate_each
from personify.storage.registry import Stores

router = APIRouter(prefix="/v1/items", tags=["items"], route_class=KeyFirstRoute)


def _missing(item_id: str) -> NotFound:
    return NotFound(f"no item {item_id!r}", field="item_id", accepted="the id of an existing item")


@router.put("/{item_id}", response_model=Item, summary="Create or replace an item")
def put_item(item_id: Identifier, body: ItemFields, key: AdminKey, stores: StoresDep) -> Item:
    return stores.catalog.upsert(key.tenant, [body.to_item(item_id)])[0]


@router.patch("/{item_id}", response_model=Item, summary="Change some fields of an item")
def patch_item(item_id: Identifier, body: ItemPatch, key: AdminKey, stores: StoresDep) -> Item:
    if stores.catalog.get(key.tenant, item_id) is None:
        raise _missing(item_id)
    return stores.catalog.patch(key.tenant, item_id, body)


@router.get("/{item_id}", response_model=Item, summary="Get an item")
def get_item(item_id: Identifier, key: ServeKey, stores: StoresDep) -> Item:
    item = stores.catalog.get(key.tenant, item_id)
    if item is None:
        raise _missing(item_id)
    return item


@router.delete("/{item_id}", status_code=204, summary="Delete an item")
def delete_item(item_id: Identifier, key: AdminKey, stores: StoresDep) -> None:
    if not stores.catalog.delete(key.tenant, item_id):
        raise _missing(item_id)


@router.get("", response_model=ItemList, summary="List or search items, optionally of one type")
def list_items(
    key: ServeKey,
    stores: StoresDep,
    type: Annotated[Name | None, Query(description="only items of this type")] = None,
    query: ShortText | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ItemList:
    items = stores.catalog.list(key.tenant, type=type, query=query, limit=limit, offset=offset)
    return ItemList(items=items, limit=limit, offset=offset)


@router.post(
    ":bulk",
    response_model=BulkResultOut,
    summary="Create or replace many items; bad records are reported by index",
    openapi_extra=documented_body(ItemCreate, many=True, key="items"),
)
async def bulk_items(
    request: Request, key: AdminKey, stores: StoresDep, settings: SettingsDep
) -> BulkResultOut:
    body = await read_json(request, max_bytes=settings.max_request_bytes)
    raws = records_of(body, key="items", limit=limits.MAX_BATCH_RECORDS)
    return await run_in_threadpool(_bulk_upsert, stores, key.tenant, raws)


def _bulk_upsert(stores: Stores, tenant: str, raws: list[object]) -> BulkResultOut:
    valid, rejected = validate_each(
        ItemCreate, raws, id_field="item_id", max_bytes=MAX_RECORD_BYTES
    )
    items: dict[str, Item] = {}  # a repeated id: the last record wins
    for _index, record in valid:
        items.pop(record.item_id, None)
        items[record.item_id] = record.to_domain()
    stored = stores.catalog.upsert(tenant, list(items.values())) if items else []
    return BulkResultOut(
        accepted=len(stored),
        ids=[i.item_id for i in stored],
        rejected=[RejectionOut.of(r) for r in rejected],
    )
