"""``/v1/users/{id}/insights``: what Personify computed about a person (behavioural profile,
predictions, segments), each part with its reason in English and Russian. Admin scope: personal
data, every call audited."""

from __future__ import annotations

from fastapi import APIRouter

from personify.api.audit import Audited
from personify.api.deps import AdminKey, ErasureCheckDep, InsightsDep, ServeKey, StoresDep
from personify.api.routing import KeyFirstRoute
from personify.domain._fields import Identifier
from personify.domain.errors import NotFound
from personify.insights.item_text import ItemTextInsights
from personify.insights.service import Insights
from personify.runtime.identity import refuse_erased

router = APIRouter(
    prefix="/v1/users", tags=["insights"], dependencies=[Audited], route_class=KeyFirstRoute
)
items_router = APIRouter(prefix="/v1/items", tags=["insights"], route_class=KeyFirstRoute)
"""What an item's text says: no personal data, a serving key reads it."""


@router.get(
    "/{user_id}/insights",
    response_model=Insights,
    summary="A person's computed profile, predictions and segments, with reasons (RU/EN)",
)
def get_insights(
    user_id: Identifier, key: AdminKey, stores: StoresDep, insights: InsightsDep,
    erased: ErasureCheckDep,
) -> Insights:
    refuse_erased(erased, key.tenant, user_id)
    result = insights.insights(key.tenant, user_id)
    known = stores.users.get(key.tenant, user_id) is not None or (
        result.profile.events_used > 0 if result.profile is not None
        else bool(stores.events.for_user(key.tenant, user_id, limit=1))
    )
    if not known:
        raise NotFound(f"no user {user_id!r}", field="user_id",
                       accepted="the id of a user with a profile or events")
    return result


@items_router.get(
    "/{item_id}/insights",
    response_model=ItemTextInsights,
    summary="What an item's title and description say: language, sentiment, emotion, keywords "
            "and topics in the tenant's categories (RU/EN reason)",
)
def get_item_insights(item_id: Identifier, key: ServeKey,
                      insights: InsightsDep) -> ItemTextInsights:
    return insights.item_insights(key.tenant, item_id)
