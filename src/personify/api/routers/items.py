"""``/v1/items``: the catalogue. Reading needs the ``serve`` scope; writing needs ``admin``.

Networking items (``event``, ``project``, ``post`` ...) are checked for their type's fields
(``personify.networking.items``): an event in the past, ending before it starts or in an
unknown time zone is refused naming the field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from personify.api.bodies import read_json
from personify.api.deps import AdminKey, RuntimeDep, ServeKey, SettingsDep, StoresDep
from personify.api.openapi import documented_body
from personify.api.routing import KeyFirstRoute
from personify.api.schemas.bulk import MAX_RECORD_BYTES, records_of
from personify.api.schemas.common import BulkResultOut, RejectionOut
from personify.api.schemas.items import ItemCreate, ItemFields, ItemList, ItemPatch
from personify.domain import limits
from personify.domain._fields import Identifier, Name, ShortText
from personify.domain.errors import InvalidInput, NotFound
from personify.domain.items import Item
from personify.ingestion import validate_each
from personify.ingestion.validation import Rejection
from personify.networking.items import problems
from personify.storage.registry import Stores

router = APIRouter(prefix="/v1/items", tags=["items"], route_class=KeyFirstRoute)


def _missing(item_id: str) -> NotFound:
    return NotFound(f"no item {item_id!r}", field="item_id", accepted="the id of an existing item")


def _check(item: Item, now: datetime | None) -> None:
    found = problems(item, now)
    if found:
        field, message, accepted = found[0]
        raise InvalidInput(message, field=field, accepted=accepted)


@router.put("/{item_id}", response_model=Item, summary="Create or replace an item")
def put_item(item_id: Identifier, body: ItemFields, key: AdminKey, stores: StoresDep,
             runtime: RuntimeDep) -> Item:
    item = body.to_item(item_id)
    _check(item, runtime.clock())
    return stores.catalog.upsert(key.tenant, [item])[0]


@router.patch("/{item_id}", response_model=Item, summary="Change some fields of an item")
def patch_item(item_id: Identifier, body: ItemPatch, key: AdminKey, stores: StoresDep,
               runtime: RuntimeDep) -> Item:
    stored = stores.catalog.get(key.tenant, item_id)
    if stored is None:
        raise _missing(item_id)
    changes = body.model_dump(exclude_unset=True)
    if "type" in changes or "properties" in changes:  # the type's fields as they will be
        merged = stored.model_copy(update={k: v for k, v in changes.items() if v is not None})
        _check(merged, runtime.clock())
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
    offset: Annotated[int, Query(ge=0, le=limits.MAX_OFFSET)] = 0,
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
    request: Request, key: AdminKey, stores: StoresDep, settings: SettingsDep,
    runtime: RuntimeDep,
) -> BulkResultOut:
    body = await read_json(request, max_bytes=settings.max_request_bytes)
    raws = records_of(body, key="items", limit=limits.MAX_BATCH_RECORDS)
    return await run_in_threadpool(_bulk_upsert, stores, key.tenant, raws, runtime.clock())


def _bulk_upsert(stores: Stores, tenant: str, raws: list[object],
                 now: datetime | None = None) -> BulkResultOut:
    valid, rejected = validate_each(
        ItemCreate, raws, id_field="item_id", max_bytes=MAX_RECORD_BYTES
    )
    items: dict[str, Item] = {}  # a repeated id: the last record wins
    for index, record in valid:
        item = record.to_domain()
        found = problems(item, now)
        if found:
            field, message, accepted = found[0]
            rejected.append(Rejection(index, "invalid_input", field, message, accepted,
                                      item.item_id))
            continue
        items.pop(record.item_id, None)
        items[record.item_id] = item
    stored = stores.catalog.upsert(tenant, list(items.values())) if items else []
    rejected.sort(key=lambda r: r.index)
    return BulkResultOut(
        accepted=len(stored),
        ids=[i.item_id for i in stored],
        rejected=[RejectionOut.of(r) for r in rejected],
    )
