"""``/v1/users/{id}/people``: people this person should meet, scored on both sides' predicted
interest, each with reasons built only from what both may see. Needs the ``serve`` scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from personify.api.deps import ErasureCheckDep, ServeKey
from personify.api.networking_wiring import NetworkingDep
from personify.api.routing import KeyFirstRoute
from personify.domain._fields import Identifier
from personify.networking.service import PeopleResponse
from personify.runtime.identity import refuse_erased

router = APIRouter(prefix="/v1/users", tags=["networking"], route_class=KeyFirstRoute)


@router.get(
    "/{user_id}/people",
    response_model=PeopleResponse,
    summary="People worth meeting (reciprocal), with reasons both sides may see",
)
def get_people(
    user_id: Identifier, key: ServeKey, networking: NetworkingDep, erased: ErasureCheckDep,
    n: Annotated[int, Query(ge=1, le=100, description="how many people (1..100)")] = 10,
) -> PeopleResponse:
    refuse_erased(erased, key.tenant, user_id)
    return networking.people(key.tenant, user_id, n)
