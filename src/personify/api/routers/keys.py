"""``/v1/keys``: list, create and revoke the API keys of the caller's tenant (admin scope)."""

from __future__ import annotations

from fastapi import APIRouter

from personify.api.deps import AdminKey, StoresDep
from personify.api.routing import KeyFirstRoute
from personify.api.schemas.keys import KeyCreate, KeyCreated, KeyList
from personify.domain.errors import NotFound

router = APIRouter(prefix="/v1/keys", tags=["keys"], route_class=KeyFirstRoute)


@router.get("", response_model=KeyList, summary="The tenant's keys (never their secrets)")
def list_keys(key: AdminKey, stores: StoresDep) -> KeyList:
    return KeyList(keys=stores.keys.list(key.tenant))


@router.post("", response_model=KeyCreated, status_code=201,
             summary="Create a key; its secret is in this answer only")
def create_key(body: KeyCreate, key: AdminKey, stores: StoresDep) -> KeyCreated:
    record, secret = stores.keys.create(key.tenant, body.name, body.scopes)
    return KeyCreated(key=record, secret=secret)


@router.delete("/{key_id}", status_code=204, summary="Revoke a key (requests with it get 401)")
def revoke_key(key_id: str, key: AdminKey, stores: StoresDep) -> None:
    owned = {k.key_id for k in stores.keys.list(key.tenant)}
    if key_id not in owned or not stores.keys.revoke(key_id):
        raise NotFound(f"no key {key_id!r} in this tenant", field="key_id",
                       accepted="the id of one of this tenant's keys")
