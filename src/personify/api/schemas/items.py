"""Item bodies: Create / Update / Public."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from personify.api.schemas.common import Page
from personify.domain._fields import (
    Identifier,
    LabelList,
    LongText,
    Name,
    Price,
    Properties,
    ShortText,
)
from personify.domain.items import Item, ItemPatch, ItemType

__all__ = ["ItemCreate", "ItemFields", "ItemList", "ItemPatch", "ItemPublic"]

ItemPublic = Item


class ItemFields(BaseModel):
    """Body of ``PUT /v1/items/{item_id}``: the whole item (replaces the stored one)."""

    model_config = ConfigDict(extra="forbid")

    type: Name = ItemType.PRODUCT.value
    title: ShortText = ""
    description: LongText = ""
    categories: LabelList = Field(default_factory=list)
    tags: LabelList = Field(default_factory=list)
    price: Price | None = None
    currency: ShortText | None = Field(default=None, max_length=3)
    available: bool = True
    hidden: bool = False
    author_id: Identifier | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    properties: Properties = Field(default_factory=dict)

    def to_item(self, item_id: str) -> Item:
        return Item.model_validate({**dict(self), "item_id": item_id})


class ItemCreate(ItemFields):
    """One record of ``POST /v1/items:bulk``."""

    item_id: Identifier

    def to_domain(self) -> Item:
        return self.to_item(self.item_id)


class ItemList(Page):
    items: list[Item]
