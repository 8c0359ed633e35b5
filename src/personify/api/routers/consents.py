"""``/v1/users/{user_id}/consents``: append a consent change; read the current state and history.

Minimal on purpose: the privacy capability builds checks and exports on the same records.
"""

from __future__ import annotations

from fastapi import APIRouter

from personify.api.audit import Audited
from personify.api.deps import AdminKey, StoresDep
from personify.api.routing import KeyFirstRoute
from personify.api.schemas.consents import ConsentCreate, ConsentsOut
from personify.domain._fields import Identifier
from personify.domain.consents import ConsentRecord

router = APIRouter(
    prefix="/v1/users/{user_id}/consents", tags=["consents"], dependencies=[Audited],
    route_class=KeyFirstRoute,
)


@router.post("", response_model=ConsentRecord, status_code=201, summary="Record a consent change")
def record_consent(
    user_id: Identifier, body: ConsentCreate, key: AdminKey, stores: StoresDep
) -> ConsentRecord:
    return stores.consents.append(key.tenant, body.to_record(user_id))


@router.get("", response_model=ConsentsOut, summary="Current consent per purpose, and history")
def get_consents(user_id: Identifier, key: AdminKey, stores: StoresDep) -> ConsentsOut:
    return ConsentsOut(
        user_id=user_id,
        current=stores.consents.current(key.tenant, user_id),
        history=stores.consents.history(key.tenant, user_id),
    )
