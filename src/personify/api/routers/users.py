"""``/v1/users``: profiles, identity merge, deletion. Admin scope (personal data)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from personify.api.audit import Audited
from personify.api.bodies import read_json
from personify.api.deps import (
    AdminKey,
    EngineDep,
    ErasureCheckDep,
    PrivacyDep,
    SettingsDep,
    StoresDep,
)
from personify.api.openapi import documented_body
from personify.api.routing import KeyFirstRoute
from personify.api.schemas.bulk import MAX_RECORD_BYTES, records_of
from personify.api.schemas.common import BulkResultOut, RejectionOut
from personify.api.schemas.privacy import ErasureReceipt, receipt_of
from personify.api.schemas.users import AliasRequest, UserCreate, UserFields, UserList, UserPatch
from personify.domain import limits
from personify.domain._fields import Identifier, ShortText
from personify.domain.errors import NotFound
from personify.domain.users import User
from personify.ingestion import Rejection, validate_each
from personify.runtime.erasure_check import CachedErasureCheck
from personify.runtime.identity import erase_subjects, link_anonymous, refuse_erased
from personify.storage.registry import Stores

router = APIRouter(
    prefix="/v1/users", tags=["users"], dependencies=[Audited], route_class=KeyFirstRoute
)

def _missing(user_id: str) -> NotFound:
    return NotFound(f"no user {user_id!r}", field="user_id", accepted="the id of an existing user")


@router.put("/{user_id}", response_model=User, summary="Create or replace a user")
def put_user(
    user_id: Identifier, body: UserFields, key: AdminKey, stores: StoresDep, erased: ErasureCheckDep
) -> User:
    refuse_erased(erased, key.tenant, user_id)
    return stores.users.upsert(key.tenant, [body.to_user(user_id)])[0]


@router.patch("/{user_id}", response_model=User, summary="Change some fields of a user")
def patch_user(user_id: Identifier, body: UserPatch, key: AdminKey, stores: StoresDep) -> User:
    if stores.users.get(key.tenant, user_id) is None:
        raise _missing(user_id)
    return stores.users.patch(key.tenant, user_id, body)


@router.get("/{user_id}", response_model=User, summary="Get a user")
def get_user(user_id: Identifier, key: AdminKey, stores: StoresDep) -> User:
    user = stores.users.get(key.tenant, user_id)
    if user is None:
        raise _missing(user_id)
    return user


@router.delete(
    "/{user_id}",
    response_model=ErasureReceipt,
    summary="Erase a user: profile, events, consents; a tombstone blocks re-creation",
)
def delete_user(
    user_id: Identifier, key: AdminKey, stores: StoresDep, erased: ErasureCheckDep,
    privacy: PrivacyDep, engine: EngineDep,
) -> ErasureReceipt:
    results = erase_subjects(privacy, erased, key.tenant, user_ids=[user_id], engine=engine)
    return receipt_of(results[0])


@router.get("", response_model=UserList, summary="List or search users")
def list_users(
    key: AdminKey,
    stores: StoresDep,
    query: ShortText | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=limits.MAX_OFFSET)] = 0,
) -> UserList:
    users = stores.users.list(key.tenant, query=query, limit=limit, offset=offset)
    return UserList(users=users, limit=limit, offset=offset)


@router.post("/{user_id}/aliases", response_model=User, summary="Merge an anonymous id into a user")
def add_alias(
    user_id: Identifier, body: AliasRequest, key: AdminKey, stores: StoresDep,
    erased: ErasureCheckDep, engine: EngineDep,
) -> User:
    refuse_erased(erased, key.tenant, user_id)
    return link_anonymous(stores, key.tenant, user_id, body.anonymous_id, state=engine.state,
                          shown=engine.service.shown)


@router.post(
    ":bulk",
    response_model=BulkResultOut,
    summary="Create or replace many users; bad records are reported by index",
    openapi_extra=documented_body(UserCreate, many=True, key="users"),
)
async def bulk_users(
    request: Request, key: AdminKey, stores: StoresDep, erased: ErasureCheckDep,
    settings: SettingsDep,
) -> BulkResultOut:
    body = await read_json(request, max_bytes=settings.max_request_bytes)
    raws = records_of(body, key="users", limit=limits.MAX_BATCH_RECORDS)
    return await run_in_threadpool(_bulk_upsert, stores, erased, key.tenant, raws)


def _bulk_upsert(
    stores: Stores, erased: CachedErasureCheck, tenant: str, raws: list[object]
) -> BulkResultOut:
    valid, rejected = validate_each(
        UserCreate, raws, id_field="user_id", max_bytes=MAX_RECORD_BYTES
    )
    users: dict[str, User] = {}  # a repeated id: the last record wins
    for index, record in valid:
        if erased(tenant, record.user_id):
            rejected.append(Rejection(index, "erased", "user_id",
                                      f"user {record.user_id!r} was erased",
                                      "the id of a user who has not been erased", record.user_id))
        else:
            users.pop(record.user_id, None)
            users[record.user_id] = record.to_domain()
    stored = stores.users.upsert(tenant, list(users.values())) if users else []
    return BulkResultOut(
        accepted=len(stored),
        ids=[u.user_id for u in stored],
        rejected=[RejectionOut.of(r) for r in sorted(rejected, key=lambda r: r.index)],
    )
